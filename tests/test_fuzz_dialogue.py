"""Fuzzing: generated text through understanding + dialogue never raises and always gets an
answer or a clean refusal (hypothesis; 10,000+ inputs across these tests)."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qopi_bot.dialogue import ConversationState, compose, plan
from qopi_bot.knowledge import load_knowledge
from qopi_bot.models import Intent, MissingFact, Outcome

from tests.conftest import ROUNDS_FIXTURE

KB = load_knowledge(rounds_file=ROUNDS_FIXTURE)
VOCAB = ["score", "75%", "74.99", "0.81", "fall", "spring", "autumn", "'25", "2025", "last", "pathway", "not",
         "didn't", "sampling", "charts", "excluded", "pool", "report", "sites", "same", "policies", "subset",
         "exception", "person", "eligible", "apply", "valid", "?", "yes", "no", "750%", "-3%", "seventy-eight percent",
         "QCP-0001", "\x00", "\u202e", "😀", "ÿ", "\n> quoted", "DOB 01/02/1960", "MRN 123456"]
words = st.lists(st.sampled_from(VOCAB), max_size=30).map(" ".join)
anything = st.text(max_size=400)
states = st.builds(
    ConversationState,
    topic=st.one_of(st.none(), st.sampled_from(list(Intent))),
    pending=st.one_of(st.none(), st.sampled_from(list(MissingFact))),
    case_id=st.one_of(st.none(), st.just("QCP-0007")),
)
days = st.dates(dt.date(2016, 1, 1), dt.date(2031, 12, 31))
FUZZ = settings(max_examples=3_500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _answer_ok(state: ConversationState, text: str, today: dt.date) -> None:
    p = plan(state, text, today, KB)
    answer = compose(p, KB, case_id="QCP-0007" if (p.open_case or p.to_case) else None)
    assert answer.text.strip()
    assert answer.outcome in set(Outcome)
    if answer.outcome is Outcome.NEEDS_INFO and answer.intent is not Intent.GREETING:
        # A question asks for a missing fact, or asks which of two readings was meant.
        assert answer.missing or answer.text.startswith("I want to get this right: do you mean"), \
            "a question must say what it needs"
    if answer.facts.get("score") is not None:
        assert 0 <= answer.facts["score"] <= 100
    assert "\x00" not in answer.text


@FUZZ
@given(states, anything, days)
def test_random_unicode_never_breaks_a_turn(state: ConversationState, text: str, today: dt.date) -> None:
    _answer_ok(state, text, today)


@FUZZ
@given(states, words, days)
def test_program_vocabulary_soup_never_breaks_a_turn(state: ConversationState, text: str, today: dt.date) -> None:
    _answer_ok(state, text, today)


@settings(max_examples=3_000, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=40).map(lambda s: s * 50), days)
def test_huge_and_control_heavy_messages(text: str, today: dt.date) -> None:
    _answer_ok(ConversationState(), text + "\x01\x02\x7f" * 10, today)


def test_megabyte_message_is_answered() -> None:
    _answer_ok(ConversationState(), "we scored 81% " + "x" * 1_000_000, dt.date(2026, 3, 1))
