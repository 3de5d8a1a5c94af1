"""A unit of work: every write one processed item makes, committed in one transaction.

Why: through SQLAlchemy async each transaction costs about a millisecond and each
statement a thread hop, so an answer written as seven separate transactions (inbox finish,
conversation state, transcript, outbox row, audit record, ...) spent most of its time in
commits. Instead the service and the channel adapters *collect* their writes on a Unit while
they work (reads still go straight to the store), and `Store.apply(unit)` runs them all as
plain synchronous statements in one thread hop and one commit.

How to join: a Store write method that takes `unit=` appends its statements here instead of
opening a transaction of its own (see `Store._write`). Anyone adding a write to the answer
path (an answer-log record, a reminder row) does the same and it commits with the answer:
all of it or none of it.

Outbox rows for `deliver_here` are inserted already leased to this process, and after the
commit `Store.apply` lists them in `leased`: the channel hands them straight to its
dispatcher (a wake-up, no poll and no claim transaction). If the process dies first, the
lease runs out and any process claims them, as with any other leased row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from qopi_bot.records import OutboxItem

Op = Callable[[Connection], Any]


class UnitConflict(Exception):
    """A write in the unit found the work already done elsewhere (e.g. a Slack message
    another event already answered): the whole unit is rolled back."""


@dataclass
class Unit:
    deliver_here: str | None = None  # outbox channel this process delivers itself
    lease_seconds: int = 60
    ops: list[Op] = field(default_factory=list)
    leased: list[OutboxItem] = field(default_factory=list)  # filled by Store.apply after the commit
    _pending_leased: list[OutboxItem] = field(default_factory=list)

    def add(self, op: Op) -> None:
        self.ops.append(op)

    def __bool__(self) -> bool:  # "is there anything to write?"
        return bool(self.ops)
