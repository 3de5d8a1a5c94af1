"""Property-based checks of the core (hypothesis)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from qopi_bot.core import decide
from qopi_bot.core.kb import Knowledge
from qopi_bot.core.validity import score_validity
from qopi_bot.knowledge import load_knowledge
from qopi_bot.models import Facts, RoundRef, Topic

from tests.conftest import ROUNDS_FIXTURE

KB: Knowledge = load_knowledge(rounds_file=ROUNDS_FIXTURE)

rounds = st.builds(RoundRef, season=st.sampled_from(["spring", "fall"]), year=st.integers(2015, 2030))
maybe_bool = st.one_of(st.none(), st.booleans())
facts = st.builds(
    Facts,
    score=st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
    completed_round=st.one_of(st.none(), rounds),
    participated_round=maybe_bool, abstraction_complete=maybe_bool, pathway=maybe_bool,
    sampling_followed=maybe_bool, charts_pool_complete=maybe_bool, report_received=maybe_bool,
    same_policies=maybe_bool, wants_subset=maybe_bool, wants_exception=maybe_bool,
)
days = st.dates(dt.date(2015, 1, 1), dt.date(2032, 12, 31))
topics = st.sampled_from(list(Topic))


@settings(max_examples=300, deadline=None)
@given(topics, facts, days)
def test_deterministic(topic: Topic, f: Facts, today: dt.date) -> None:
    assert decide(topic, f, today, KB) == decide(topic, f.model_copy(deep=True), today, KB)


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 100, allow_nan=False), days)
def test_meets_threshold_iff_at_least_75(score: float, today: dt.date) -> None:
    d = decide(Topic.ELIGIBILITY, Facts(score=score), today, KB)
    assert d.facts.meets_threshold is (score >= 75)
    assert ("ELIG-SCORE" in d.failed_rules) is (score < 75)


@settings(max_examples=300, deadline=None)
@given(rounds, days)
def test_valid_until_is_same_season_one_year_later(r: RoundRef, today: dt.date) -> None:
    v = score_validity(r, today, KB)
    assert v.valid_until_round.season == r.season and v.valid_until_round.year == r.year + 1
    if v.valid_until is not None:
        assert v.can_apply is (today <= v.valid_until)


@settings(max_examples=300, deadline=None)
@given(topics, facts, days)
def test_every_decided_rule_has_its_quote(topic: Topic, f: Facts, today: dt.date) -> None:
    d = decide(topic, f, today, KB)
    quoted = {c.rule_id for c in d.citations}
    assert set(d.rules) <= quoted
    for c in d.citations:
        assert c.quote == KB.rule(c.rule_id).source


@settings(max_examples=300, deadline=None)
@given(facts, days)
def test_not_eligible_always_says_what_would_change(f: Facts, today: dt.date) -> None:
    d = decide(Topic.ELIGIBILITY, f, today, KB)
    if d.verdict is not None and d.verdict.value == "not_eligible":
        assert d.would_change and len(d.would_change) == len(d.failed_rules)
