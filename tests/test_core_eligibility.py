"""The eligibility core against the contract's order and every boundary it names."""

from __future__ import annotations

import datetime as dt

import pytest

from qopi_bot.core import decide
from qopi_bot.core.kb import Knowledge
from qopi_bot.models import Entity, Facts, MissingFact, Outcome, RoundRef, Topic, Verdict

MARCH = dt.date(2026, 3, 1)
FALL25 = RoundRef(season="fall", year=2025)
SPRING25 = RoundRef(season="spring", year=2025)


def elig(kb: Knowledge, today: dt.date = MARCH, **facts: object) -> object:
    return decide(Topic.ELIGIBILITY, Facts(**facts), today, kb)


@pytest.mark.parametrize("score, passes", [(74.99, False), (74.9, False), (75.0, True), (75, True), (100, True), (0, False)])
def test_threshold_is_75_inclusive_and_never_rounded(kb: Knowledge, score: float, passes: bool) -> None:
    d = elig(kb, score=score)
    assert d.facts.meets_threshold is passes
    assert d.verdict is (Verdict.ELIGIBLE if passes else Verdict.NOT_ELIGIBLE)
    assert ("ELIG-SCORE" in d.failed_rules) is (not passes)


def test_unknown_score_asks_for_it(kb: Knowledge) -> None:
    d = elig(kb)
    assert d.outcome is Outcome.NEEDS_INFO and d.verdict is None
    assert d.missing == [MissingFact.SCORE]


def test_every_failed_requirement_is_listed(kb: Knowledge) -> None:
    d = elig(kb, score=70, pathway=False, sampling_followed=False, participated_round=False, abstraction_complete=False)
    assert d.verdict is Verdict.NOT_ELIGIBLE
    assert set(d.failed_rules) == {"ELIG-SCORE", "ELIG-PATHWAY", "ELIG-SAMPLING", "ELIG-ROUND", "ELIG-ABSTRACTION"}
    assert len(d.would_change) == 5


def test_failure_beats_escalation_and_escalation_beats_missing_score(kb: Knowledge) -> None:
    assert elig(kb, score=60, wants_subset=True).verdict is Verdict.NOT_ELIGIBLE
    d = elig(kb, wants_subset=True)
    assert d.verdict is Verdict.NEEDS_STAFF_REVIEW and d.outcome is Outcome.ESCALATED
    assert d.escalation is not None and d.escalation.reason == "ENTITY-SUBSET"
    assert elig(kb, wants_exception=True).escalation.reason == "ENTITY-EXCEPTION"


def test_an_exception_asked_for_a_failed_requirement_keeps_the_verdict_and_goes_to_staff(kb: Knowledge) -> None:
    # "A tornado closed us and we missed the spring round; any flexibility?": not eligible as things
    # stand (the contract's first step), and the exception asked for is still a staff decision.
    d = elig(kb, participated_round=False, wants_exception=True)
    assert d.verdict is Verdict.NOT_ELIGIBLE and d.failed_rules == ["ELIG-ROUND"]
    assert d.outcome is Outcome.ESCALATED and d.escalation is not None and d.escalation.reason == "ENTITY-EXCEPTION"
    assert d.rules == ["ELIG-ROUND", "ENTITY-EXCEPTION"]
    # A subset request does not lift a failed requirement to staff, nor does an exception asked for a
    # score under the threshold (the measure itself): only the failure is answered.
    for facts in ({"score": 60, "wants_subset": True}, {"score": 72, "wants_exception": True},
                  {"score": 72, "participated_round": False, "wants_exception": True}):
        d = elig(kb, **facts)
        assert d.verdict is Verdict.NOT_ELIGIBLE and d.outcome is Outcome.ANSWERED and d.escalation is None


def test_conditions(kb: Knowledge) -> None:
    d = elig(kb, score=79, charts_pool_complete=False)
    assert d.verdict is Verdict.ELIGIBLE_WITH_CONDITIONS and "ELIG-ATTESTATION" in d.rules
    d = elig(kb, score=80, report_received=False)
    assert d.verdict is Verdict.ELIGIBLE_WITH_CONDITIONS and "APPLY-AFTER-REPORT" in d.conditions
    d = elig(kb, score=80, report_received=True, charts_pool_complete=True)
    assert d.verdict is Verdict.ELIGIBLE and "APPLY-STANDARDS" in d.rules


def test_unknown_sampling_is_a_reminder_not_a_failure(kb: Knowledge) -> None:
    d = elig(kb, score=80)
    assert d.verdict is Verdict.ELIGIBLE
    assert "ELIG-SAMPLING" in d.reminders and "ELIG-SAMPLING" not in d.failed_rules
    assert d.next_steps[-1] == "APPLY-STANDARDS"


def test_validity_dates_and_last_day_inclusive(kb: Knowledge) -> None:
    d = elig(kb, score=81, completed_round=FALL25)
    assert d.facts.valid_until_round == "Fall 2026"
    assert d.facts.valid_until == dt.date(2026, 12, 11)
    assert d.facts.can_apply is True
    last = elig(kb, today=dt.date(2026, 12, 11), score=81, completed_round=FALL25)
    after = elig(kb, today=dt.date(2026, 12, 12), score=81, completed_round=FALL25)
    assert last.verdict is Verdict.ELIGIBLE and last.facts.can_apply is True
    assert after.verdict is Verdict.NOT_ELIGIBLE and after.failed_rules == ["VALIDITY"] and after.facts.can_apply is False


def test_spring_validity_boundary(kb: Knowledge) -> None:
    assert elig(kb, today=dt.date(2026, 6, 12), score=77, completed_round=SPRING25).facts.can_apply is True
    assert elig(kb, today=dt.date(2026, 6, 13), score=77, completed_round=SPRING25).facts.can_apply is False


def test_unpublished_close_date(kb: Knowledge) -> None:
    d = decide(Topic.VALIDITY, Facts(completed_round=RoundRef(season="spring", year=2026)), dt.date(2026, 8, 1), kb)
    assert d.facts.valid_until_round == "Spring 2027"
    assert d.facts.valid_until is None
    assert "valid_until" in d.facts.as_json() and d.facts.as_json()["valid_until"] is None
    assert d.facts.can_apply is True  # Spring 2027 cannot have closed during 2026


def test_unpublished_date_but_later_round_started_proves_closed(kb: Knowledge) -> None:
    # Fall 2026 score -> valid until Fall 2027 (no close date in the fixture). Once a later
    # round (Spring 2028, not in the fixture) is unknown, the answer stays unknown...
    d = decide(Topic.VALIDITY, Facts(completed_round=RoundRef(season="fall", year=2026)), dt.date(2027, 11, 1), kb)
    assert d.facts.valid_until is None and d.facts.can_apply is None


def test_round_missing_from_calendar_is_unknown_not_guessed(kb: Knowledge) -> None:
    d = decide(Topic.VALIDITY, Facts(completed_round=RoundRef(season="fall", year=2030)), dt.date(2031, 10, 1), kb)
    assert d.facts.valid_until is None and d.facts.can_apply is None


def test_validity_needs_round(kb: Knowledge) -> None:
    d = decide(Topic.VALIDITY, Facts(), MARCH, kb)
    assert d.outcome is Outcome.NEEDS_INFO and d.missing == [MissingFact.ROUND] and d.rules == ["VALIDITY"]


@pytest.mark.parametrize("same, entity, rules", [
    (True, Entity.ONE_ENTITY, {"ENTITY-PRACTICE", "ENTITY-INTEGRATION"}),
    (False, Entity.SEPARATE_ENTITIES, {"ENTITY-LOOSE"}),
])
def test_multi_site(kb: Knowledge, same: bool, entity: Entity, rules: set[str]) -> None:
    d = decide(Topic.ENTITY, Facts(same_policies=same, site_count=4), MARCH, kb)
    assert d.outcome is Outcome.ANSWERED and d.facts.entity is entity and rules <= set(d.rules)


def test_multi_site_unknown_states_rule_and_asks(kb: Knowledge) -> None:
    d = decide(Topic.ENTITY, Facts(site_count=3), MARCH, kb)
    assert d.outcome is Outcome.NEEDS_INFO and d.missing == [MissingFact.SAME_POLICIES]
    assert {"ENTITY-PRACTICE", "ENTITY-INTEGRATION", "ENTITY-LOOSE"} <= set(d.rules)


def test_subset_and_exception_escalate_from_entity(kb: Knowledge) -> None:
    d = decide(Topic.ENTITY, Facts(wants_subset=True), MARCH, kb)
    assert d.outcome is Outcome.ESCALATED and d.verdict is Verdict.NEEDS_STAFF_REVIEW and d.facts.entity is Entity.SUBSET
    assert decide(Topic.ENTITY, Facts(wants_exception=True), MARCH, kb).rules == ["ENTITY-EXCEPTION"]


@pytest.mark.parametrize("topic, key, value", [
    (Topic.MEASURES, "measure_count", 25), (Topic.STANDARDS, "standard_count", 20),
    (Topic.SCORE_THRESHOLD, "threshold", 75), (Topic.CONTACT, "phone", "571-483-1669"),
    (Topic.CONTACT, "email", "qopicertification@asco.org"),
])
def test_informational_facts(kb: Knowledge, topic: Topic, key: str, value: object) -> None:
    assert decide(topic, Facts(), MARCH, kb).facts.as_json()[key] == value


def test_human_request_escalates(kb: Knowledge) -> None:
    d = decide(Topic.HUMAN, Facts(), MARCH, kb)
    assert d.outcome is Outcome.ESCALATED and d.escalation is not None and d.escalation.reason == "HUMAN-REQUEST"


def test_every_decided_rule_is_cited_with_its_source(kb: Knowledge) -> None:
    d = elig(kb, score=81, completed_round=FALL25, charts_pool_complete=False)
    cited = {c.rule_id: c.quote for c in d.citations}
    for rule_id in d.rules:
        assert cited[rule_id] == kb.rule(rule_id).source


def test_fall_round_cannot_close_before_july_of_its_year() -> None:
    from qopi_bot.knowledge import load_knowledge

    shipped = load_knowledge()  # no dates published at all
    march = decide(Topic.VALIDITY, Facts(completed_round=FALL25), dt.date(2026, 3, 1), shipped)
    assert march.facts.valid_until is None and march.facts.can_apply is True
    november = decide(Topic.VALIDITY, Facts(completed_round=FALL25), dt.date(2026, 11, 26), shipped)
    assert november.facts.valid_until is None and november.facts.can_apply is None  # unknown: not guessed
