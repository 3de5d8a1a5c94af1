"""The email policies the worker parses and composes with: Python's `policy.default`, with a
header factory that builds each header class once.

`email.headerregistry.HeaderRegistry` creates a new class (`type(...)`) every time a header is
read or set under policy.default -- every `msg.get(...)`, every `msg[...] = ...`. Per mail that
was about a third of a millisecond parsing and as much composing. The classes it creates
depend only on the header name, so building each once and reusing it changes nothing else:
same parsing, same folding, same bytes."""

from __future__ import annotations

import threading
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry


class _OnceRegistry(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._lock = threading.Lock()  # large mail is parsed in a worker thread

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            with self._lock:
                made = self._made.setdefault(key, super().__getitem__(name))
        return made

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._made.pop(name.lower(), None)


DEFAULT = policy.default.clone(header_factory=_OnceRegistry())
