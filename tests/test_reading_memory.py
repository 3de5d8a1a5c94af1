"""The memory of readings (qopi_bot/understanding/memo.py): a message read again gives the very
reading a first read gives, each caller gets a copy of its own, the memory is bounded, and
knowledge staff changed is never read through an old memory."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from qopi_bot.knowledge import load_knowledge
from qopi_bot.models import MissingFact
from qopi_bot.understanding import understand
from qopi_bot.understanding.memo import Readings, forget, readings_for
from qopi_bot.understanding.reader import read_message

TODAY = dt.date(2026, 3, 2)
MESSAGES = [
    "Our OQS was 81% in Fall 2025 on the certification pathway. Are we eligible?",
    "We have three sites that share policies. Do we apply together?",
    "Can we certify only our downtown clinic?",
    "74.99",
]


def test_a_remembered_reading_equals_a_first_reading() -> None:
    kb = load_knowledge()
    forget()
    for text in MESSAGES:
        for pending in (None, MissingFact.SCORE):
            first = understand(text, TODAY, kb, pending)
            again = understand(text, TODAY, kb, pending)
            assert again == first == read_message(text, TODAY, kb, pending)
    memory = readings_for(kb)
    assert memory.misses == 2 * len(MESSAGES) and memory.hits == 2 * len(MESSAGES)


def test_the_day_and_the_fact_awaited_are_part_of_what_is_remembered() -> None:
    kb = load_knowledge()
    forget()
    bare = understand("74.99", TODAY, kb)
    as_answer = understand("74.99", TODAY, kb, MissingFact.SCORE)
    assert as_answer.facts.score == 74.99 and as_answer.answered_pending
    assert bare != as_answer  # not the reading of the other question
    assert readings_for(kb).misses == 2


def test_each_caller_gets_a_copy_of_its_own() -> None:
    kb = load_knowledge()
    forget()
    first = understand(MESSAGES[0], TODAY, kb)
    first.facts.score = 12.0
    first.intents.clear()
    again = understand(MESSAGES[0], TODAY, kb)
    assert again.facts.score == 81 and again.intents


def test_new_knowledge_gets_a_new_memory() -> None:
    old, new = load_knowledge(), load_knowledge()  # a reload, as after staff edit knowledge/
    forget()
    understand(MESSAGES[1], TODAY, old)
    understand(MESSAGES[1], TODAY, new)
    assert readings_for(new).owner is new
    assert readings_for(new).misses == 1 and readings_for(new).hits == 0  # read again, not taken from the old memory


def test_the_memory_is_bounded_and_keeps_the_recently_used() -> None:
    class Seen(BaseModel):
        n: int

    memory: Readings[Seen] = Readings(owner=object(), limit=3)
    for n in range(3):
        memory.get(n, lambda n=n: Seen(n=n))
    memory.get(0, lambda: Seen(n=-1))  # 0 is used again: 1 is now the oldest
    memory.get(3, lambda: Seen(n=3))  # over the limit: 1 goes
    assert len(memory) == 3
    assert memory.get(1, lambda: Seen(n=-1)).n == -1  # read afresh
    assert memory.get(0, lambda: Seen(n=-1)).n == 0  # still remembered
