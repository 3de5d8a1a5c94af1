"""Readings remembered by message: the fast path for a message read before.

`understand` is a pure function of the message, the day, the fact the bot is waiting for and
the knowledge in use, so a message read again (on a deadline day many practices send the same
"is 74.99% enough to pass?", and a retried delivery sends the very same text) can reuse the
reading instead of running the models and rules again (about 1 ms each).

The memory is bounded (least recently used out first), belongs to one Knowledge object (an
edit staff make to knowledge/ builds a new one, and the old readings go with the old object),
and stays in the process: nothing here is logged or stored. Each caller gets its own copy, so
no one can change a reading another caller will be given."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pydantic import BaseModel

Reading = TypeVar("Reading", bound=BaseModel)

MAX_READINGS = 2048  # a few MB at most: texts are cut at the dialogue's MAX_TEXT


class Readings(Generic[Reading]):
    """Readings of one Knowledge object, keyed by what the reading depends on."""

    def __init__(self, owner: object, limit: int = MAX_READINGS) -> None:
        self.owner = owner
        self.limit = limit
        self._known: OrderedDict[Hashable, Reading] = OrderedDict()
        # Today every reading happens on the event loop's thread; the lock keeps a reader on
        # another thread from finding an entry evicted between its look-up and its move.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, read: Callable[[], Reading]) -> Reading:
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self.hits += 1
                self._known.move_to_end(key)
        if known is None:
            known = read()  # outside the lock: a reading takes about a millisecond
            with self._lock:
                self.misses += 1
                self._known[key] = known
                if len(self._known) > self.limit:
                    self._known.popitem(last=False)
        return known.model_copy(deep=True)

    def __len__(self) -> int:
        return len(self._known)


_CURRENT: list[Readings[BaseModel]] = []  # the readings of the knowledge last used: one at a time


def readings_for(kb: object) -> Readings[BaseModel]:
    """The remembered readings of `kb`; a new, empty memory when the knowledge changed."""
    if _CURRENT and _CURRENT[0].owner is kb:
        return _CURRENT[0]
    fresh: Readings[BaseModel] = Readings(kb)
    _CURRENT[:] = [fresh]
    return fresh


def forget() -> None:
    """Drop every remembered reading (benchmarks measure a first reading with it)."""
    _CURRENT.clear()
