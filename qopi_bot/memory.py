"""Conversation state that lives only as long as one CLI run, and a database opened lazily.

A one-off `qopi-bot ask` or a stdin stream's run-scoped threads can never be resumed, so
their state need not touch the database; it is opened only when a staff case has to be
stored. That keeps `ask` fast to start and fast per line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from qopi_bot.models import ConversationState

if TYPE_CHECKING:
    from qopi_bot.store import Store


class MemoryConversations:
    def __init__(self) -> None:
        self._states: dict[str, ConversationState] = {}
        self._messages: dict[str, list[tuple[str, str | None, str]]] = {}

    async def load_state(self, key: str) -> ConversationState | None:
        state = self._states.get(key)
        return state.model_copy(deep=True) if state else None

    async def save_turn(self, key: str, channel: str, state: ConversationState,
                        lines: list[tuple[str, str | None, str]], answer: Any = None) -> None:
        # `answer` (the answer-log record) is dropped: a one-off CLI run is an operator at a
        # terminal, and keeping it off the database is what lets `ask` run without one.
        self._messages.setdefault(key, []).extend(lines)
        self._states[key] = state

    async def transcript(self, key: str, limit: int = 50) -> list[tuple[str, str | None, str]]:
        return self._messages.get(key, [])[-limit:]


class LazyStore:
    """Stands in for a Store; the real one (and SQLAlchemy) is created on first use."""

    def __init__(self, url: str, prepare: Callable[[Store], Awaitable[None]]) -> None:
        self._url = url
        self._prepare = prepare
        self._store: Store | None = None

    async def get(self) -> Store:
        if self._store is None:
            from qopi_bot.store import Store

            store = Store.from_url(self._url)
            try:
                await self._prepare(store)
            except BaseException:
                await store.close()
                raise
            self._store = store
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await getattr(await self.get(), name)(*args, **kwargs)

        return call
