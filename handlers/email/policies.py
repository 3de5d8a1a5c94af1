"""The email policies the worker parses and composes with: Python's `policy.default`, with a
header factory that builds each header class once, and header values parsed once.

`email.headerregistry.HeaderRegistry` creates a new class (`type(...)`) every time a header is
read or set under policy.default -- every `msg.get(...)`, every `msg[...] = ...`. Per mail that
was about a third of a millisecond parsing and as much composing. The classes it creates
depend only on the header name, so building each once and reusing it changes nothing else:
same parsing, same folding, same bytes.

Reading a header under policy.default parses its value into a header object, every time:
Content-Type is read five or six times per message (walking the parts, charsets, attachments)
and is the same text in most mail. The parse is a function of the name and the text only, and
the objects are never changed once made, so a bounded cache of them (values under 1,000
characters) gives what a fresh parse would, for a fraction of the cost."""

from __future__ import annotations

import threading
from functools import lru_cache
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy, linesep_splitter
from typing import Any


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


class _ParseOncePolicy(EmailPolicy):
    def header_fetch_parse(self, name: str, value: Any) -> Any:
        # EmailPolicy.header_fetch_parse, with the parse remembered for short values.
        if hasattr(value, "name"):
            return value
        if len(value) >= 1000:
            return self.header_factory(name, "".join(linesep_splitter.split(value)))
        return _parsed(self.header_factory, name, value)


@lru_cache(maxsize=2048)
def _parsed(factory: HeaderRegistry, name: str, value: str) -> BaseHeader:
    return factory(name, "".join(linesep_splitter.split(value)))


# policy.default is EmailPolicy() with its defaults; this is the same with the two changes above.
DEFAULT = _ParseOncePolicy(header_factory=_OnceRegistry())
