"""The deterministic eligibility core. PURE: no I/O, no clock, no logging, no channels.

    decide(topic, facts, today, kb) -> Decision

The same topic, facts, date and knowledge always give the same Decision."""

from __future__ import annotations

import datetime as dt

from qopi_bot.core.eligibility import decide_eligibility
from qopi_bot.core.entity import decide_entity
from qopi_bot.core.info import decide_info, decide_validity
from qopi_bot.core.kb import Knowledge
from qopi_bot.models import Decision, Facts, Topic

__all__ = ["decide"]


def decide(topic: Topic, facts: Facts, today: dt.date, kb: Knowledge) -> Decision:
    if topic is Topic.ELIGIBILITY:
        return decide_eligibility(facts, today, kb)
    if topic is Topic.VALIDITY:
        return decide_validity(facts, today, kb)
    if topic is Topic.ENTITY:
        return decide_entity(facts, kb)
    return decide_info(topic, facts, today, kb)
