"""Where `qopi-bot ask` keeps what it derives at start-up (compiled patterns, loaded knowledge).

Like Python's __pycache__: files derived from inputs that are named in the file's key, so a
changed input means a different file, never a stale answer. Staff never edit these; deleting
the folder is always safe. QOPI_STARTUP_CACHE=0 turns them off (everything is derived anew)."""

from __future__ import annotations

import os
from pathlib import Path


def enabled() -> bool:
    return os.environ.get("QOPI_STARTUP_CACHE", "1") != "0"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qopi-bot"


def write_atomically(target: Path, data: bytes) -> None:
    """Concurrent runs never read half a file: write aside, then rename over."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
