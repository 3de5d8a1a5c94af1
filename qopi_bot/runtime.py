"""Build the parts every process needs (settings, knowledge, store, dialogue) in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from pathlib import Path

from qopi_bot.core.kb import Knowledge
from qopi_bot.knowledge import load_knowledge
from qopi_bot.service import DialogueService

if TYPE_CHECKING:
    from qopi_bot.settings import Settings  # annotations only: `ask` never builds the pydantic-settings class
    from qopi_bot.store import Store


@dataclass
class Runtime:
    settings: Settings
    kb: Knowledge
    store: Store | Any
    dialogue: DialogueService


def load_kb(settings: Settings, rounds_file: str | None = None, cached: bool = False) -> Knowledge:
    chosen = rounds_file or settings.rounds_file or None
    directory = Path(settings.knowledge_dir) if settings.knowledge_dir else None
    if cached:  # short-lived `ask`/`chat`: the knowledge as loaded last time, if no file changed
        from qopi_bot.knowledge_cache import load

        return load(directory, Path(chosen) if chosen else None)
    return load_knowledge(directory, rounds_file=Path(chosen) if chosen else None)


@asynccontextmanager
async def open_runtime(settings: Settings, rounds_file: str | None = None) -> AsyncIterator[Runtime]:
    from qopi_bot.store import Store

    kb = load_kb(settings, rounds_file)
    store = Store.from_url(settings.db_url)
    try:
        await prepare_schema(store)
        yield Runtime(settings=settings, kb=kb, store=store, dialogue=DialogueService(store, kb, settings))
    finally:
        await store.close()


@asynccontextmanager
async def open_cli_runtime(settings: Settings, rounds_file: str | None = None) -> AsyncIterator[Runtime]:
    """For `ask`: run-scoped and one-off conversations in memory; the database is opened
    only for `--conversation` threads and staff cases."""
    from qopi_bot.memory import LazyStore, MemoryConversations

    kb = load_kb(settings, rounds_file, cached=True)
    store = LazyStore(settings.db_url, prepare_schema)
    dialogue = DialogueService(store, kb, settings, memory=MemoryConversations(),
                               ephemeral=lambda key: key.startswith(("cli:stream:", "cli:once:")))
    try:
        yield Runtime(settings=settings, kb=kb, store=store, dialogue=dialogue)  # type: ignore[arg-type]
    finally:
        await store.close()


async def prepare_schema(store: Store) -> None:
    from qopi_bot.migrate import ensure_schema

    await ensure_schema(store)
