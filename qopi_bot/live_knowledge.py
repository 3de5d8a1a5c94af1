"""Knowledge that follows the folder while a process runs (contract section 7).

The web and worker processes look at the knowledge folder (QOPI_KNOWLEDGE_DIR, and
QOPI_ROUNDS_FILE) every QOPI_KNOWLEDGE_POLL_SECONDS (default 10, so a change is in force
well within a minute). Looking is cheap: file names, sizes and modification times. Only when
those change is the folder read and checked in full, off the event loop, exactly as
`qopi-bot knowledge check` checks it. A folder that passes replaces the knowledge in every
part of the process that holds it (the dialogue, the email composer, ...); one that fails is
refused, the knowledge in force stays, and the error is logged once per change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from qopi_bot.core.kb import Knowledge
from qopi_bot.knowledge import KnowledgeError, knowledge_dir
from qopi_bot.logs import get_logger
from qopi_bot.runtime import load_kb
from qopi_bot.settings import Settings

log = get_logger("qopi_bot.knowledge")

Stamp = tuple[tuple[str, int, int], ...]


class LiveKnowledge:
    def __init__(self, settings: Settings, initial: Knowledge | None = None) -> None:
        self.settings = settings
        self.folder = knowledge_dir(settings.knowledge_dir)
        self.rounds_file = Path(settings.rounds_file) if settings.rounds_file else None
        self._stamp = self._look()
        self.current = initial if initial is not None else load_kb(settings)
        self.last_error: str | None = None  # why the newest change was refused, if it was
        self._subscribers: list[Callable[[Knowledge], None]] = []

    def subscribe(self, apply: Callable[[Knowledge], None]) -> None:
        """`apply(kb)` is called with each new knowledge accepted from now on."""
        self._subscribers.append(apply)

    def _look(self) -> Stamp:
        found: list[tuple[str, int, int]] = []
        paths = [p for p in self.folder.rglob("*") if p.suffix in (".yaml", ".yml", ".txt", ".json")]
        if self.rounds_file is not None:
            paths.append(self.rounds_file)
        for path in paths:
            with contextlib.suppress(OSError):  # a file removed while we look: the next look sees it
                st = path.stat()
                found.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(sorted(found))

    async def check(self) -> bool:
        """Apply the folder if it changed and passes the check; True when new knowledge took effect."""
        stamp = await asyncio.to_thread(self._look)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            fresh = await asyncio.to_thread(load_kb, self.settings)
        except KnowledgeError as exc:
            self.last_error = str(exc)
            log.error("knowledge.reload_refused", error=str(exc), version_in_force=self.current.version)
            return False
        except Exception as exc:  # whatever a half-written file does, the process keeps its knowledge
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("knowledge.reload_refused", error=self.last_error, version_in_force=self.current.version)
            return False
        self.last_error = None
        if fresh.version == self.current.version:
            return False  # touched, not changed
        previous, self.current = self.current.version, fresh
        for apply in self._subscribers:
            apply(fresh)
        log.info("knowledge.reloaded", version=fresh.version, previous=previous)
        return True

    async def run_forever(self, stop: asyncio.Event) -> None:
        interval = max(0.05, self.settings.knowledge_poll_seconds)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            try:
                await self.check()
            except Exception as exc:  # looking must never end the process
                log.error("knowledge.look_failed", error=type(exc).__name__)
