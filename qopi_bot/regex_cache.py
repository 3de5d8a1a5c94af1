"""Compiled regular expressions kept between `qopi-bot ask` runs, like __pycache__ keeps bytecode.

The understanding modules compile a few hundred patterns at import; in a one-off `ask` that is
about a fifth of the start-up time. Python compiles a pattern in two steps: a pure-Python parser
and compiler turn the text into a list of integers, then `_sre.compile` builds the pattern object
from that list in C, which is cheap. This module stores the integer lists (per Python build) and,
at the next start, puts the finished pattern objects into `re`'s own cache, so every
`re.compile(...)` or `re.search(...)` in any module finds its pattern already built.

Nothing changes in what a pattern matches: a stored entry is exactly what this interpreter's own
compiler produced for that pattern text and those flags, and `_sre` validates the code it is given.
Any mismatch (another Python, a damaged or missing file) means the cache is ignored and patterns
compile the ordinary way. See qopi_bot/startup_cache.py for where the file lives."""

from __future__ import annotations

import array
import marshal
import re
import sys
from pathlib import Path
from typing import Any

from qopi_bot import startup_cache

try:  # CPython 3.11's layout; anything else simply runs without the cache
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]

    _SUPPORTED = (sys.version_info[:2] == (3, 11) and isinstance(getattr(re, "_cache", None), dict)
                  and array.array("I").itemsize == _sre.CODESIZE)
except ImportError:  # pragma: no cover - other interpreters
    _SUPPORTED = False

_MAX_ENTRIES = 480  # re keeps at most 512 patterns; leave room for the ones compiled at run time (`ask` alone compiles ~430)
# (pattern, flags) -> (final flags, code as array('I') bytes, groups, groupindex, indexgroup)
_Entry = tuple[int, bytes, int, dict[str, int], tuple[Any, ...]]
_stored: dict[tuple[str, int], _Entry] = {}


def cache_file() -> Path:
    tag = f"{sys.implementation.cache_tag}-{_sre.MAGIC}-{_sre.CODESIZE}" if _SUPPORTED else "none"
    return startup_cache.cache_dir() / f"regex-{tag}.marshal"


def _enabled() -> bool:
    return _SUPPORTED and startup_cache.enabled()


def preload() -> None:
    """Put stored patterns into re's cache. Never fails: without a usable file, nothing happens."""
    if not _enabled():
        return
    try:
        entries: dict[tuple[str, int], _Entry] = marshal.loads(cache_file().read_bytes())
        cache = re._cache  # type: ignore[attr-defined]
        for (pattern, flags), (final_flags, code, groups, groupindex, indexgroup) in entries.items():
            key = (str, pattern, flags)
            if key not in cache and len(cache) < _MAX_ENTRIES:
                cache[key] = _sre.compile(pattern, final_flags, array.array("I", code).tolist(), groups, groupindex, indexgroup)
        _stored.update(entries)
    except Exception:  # a stale or damaged cache only costs the ordinary compile
        _stored.clear()


def _entry(pattern: str, flags: int) -> _Entry:
    # The same steps as re._compiler.compile, stopping before _sre.compile.
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[Any] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    # Plain types only: marshal stores no subclasses (RegexFlag is an int subclass).
    return (int(flags | parsed.state.flags), array.array("I", code).tobytes(), int(parsed.state.groups - 1),
            {str(k): int(v) for k, v in groupindex.items()}, tuple(indexgroup))


def _volatile() -> set[str]:
    """Patterns whose text changes from run to run: storing them would rewrite the file each time.
    tokenize builds its token patterns from sets of string prefixes (pydantic reaches it through
    inspect.signature), so their order follows the per-process string hash seed."""
    tokenize = sys.modules.get("tokenize")
    if tokenize is None:
        return set()
    return {getattr(tokenize, "PseudoToken", ""), *getattr(tokenize, "endpats", {}).values()}


def save() -> None:
    """Add the str patterns this process compiled that are not stored yet (usually none)."""
    if not _enabled():
        return
    try:
        volatile = _volatile()
        new = [(k[1], int(k[2])) for k in list(re._cache)  # type: ignore[attr-defined]
               if k[0] is str and (k[1], k[2]) not in _stored and not k[2] & re.DEBUG and k[1] not in volatile]
        if not new:
            return
        entries = {**_stored, **{key: _entry(*key) for key in new}}
        entries = dict(list(entries.items())[-_MAX_ENTRIES:])  # the newest, if patterns keep changing
        startup_cache.write_atomically(cache_file(), marshal.dumps(entries))
        _stored.clear()
        _stored.update(entries)
    except Exception:  # a read-only home or a full disk: the next run compiles as usual
        pass
