"""Several items per transaction, without changing what each item means.

`ItemBatch`: the units of work of the items one claim returned (qopi_bot.unit), committed
together. Items of one conversation never share a commit: the second must read what the
first wrote, so the batch is committed before it starts. A unit that finds its work done
elsewhere (UnitConflict) sinks the shared commit; the units are then applied one by one and
only that item is finished as a duplicate.

`GroupCommit`: writes that arrive while one is in flight are flushed together by the next
one (the Slack ack path, the dispatcher's "sent" marks): a burst of N costs a few commits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from qopi_bot.logs import get_logger
from qopi_bot.records import InboxItem, OutboxItem
from qopi_bot.unit import Unit, UnitConflict

if TYPE_CHECKING:
    from qopi_bot.store import Store

log = get_logger("qopi_bot.batching")
T = TypeVar("T")
R = TypeVar("R")


class ItemBatch:
    def __init__(self, store: Store, hand_off: Callable[[list[OutboxItem]], None],
                 on_failed: Callable[[InboxItem, Exception], Awaitable[None]] | None = None, max_units: int = 4) -> None:
        self.store = store
        # A commit holds the process's one SQLite connection for about a millisecond per
        # item; a few items per commit amortise its cost without making an ack wait long.
        self.max_units = max_units
        self.hand_off = hand_off  # the channel's dispatcher: send these now, they are leased to us
        self.on_failed = on_failed  # an item whose writes could not be committed (a bug, a broken row)
        self._pending: list[tuple[InboxItem, Unit]] = []
        self._touched: set[str] = set()

    def must_commit_before(self, conversation: str | None) -> bool:
        """True when an item of this conversation must see the batch's writes first (an
        item without a known conversation is never batched with others)."""
        return bool(self._pending) and (conversation is None or conversation in self._touched)

    async def settle(self, keys: Sequence[str]) -> bool:
        """Commit now if the batch wrote anything under one of `keys` (a conversation, an
        email Message-ID, a recipient) that the item about to read it must see. True if it
        committed (what the caller read under those keys before is then out of date)."""
        if self._pending and any(k in self._touched for k in keys):
            await self.commit()
            return True
        return False

    async def add(self, item: InboxItem, conversation: str | None, unit: Unit, keys: Sequence[str] = ()) -> None:
        self._pending.append((item, unit))
        self._touched.add(conversation or "")
        self._touched.update(keys)
        if len(self._pending) >= self.max_units:
            await self.commit()

    async def commit(self) -> None:
        pending, self._pending = self._pending, []
        self._touched = set()
        if not pending:
            return
        units = [u for _, u in pending]
        try:
            await self.store.apply(*units)
        except Exception:
            # One item's writes sank the shared commit (already answered elsewhere, or a
            # failing write): apply them one by one, so only that item is affected.
            for item, unit in pending:
                await self._apply_alone(item, unit)
        leased = [row for u in units for row in u.leased]
        if leased:
            self.hand_off(leased)

    async def _apply_alone(self, item: InboxItem, unit: Unit) -> None:
        try:
            await self.store.apply(unit)
        except UnitConflict:  # answered by another event meanwhile: nothing of this one is kept
            log.info("batch.already_answered", item=item.id)
            await self.store.inbox_finish(item.id, "done", "already answered")
        except Exception as exc:
            if self.on_failed is None:
                raise
            await self.on_failed(item, exc)


class GroupCommit(Generic[T]):
    """Calls `flush(batch)` with everything queued while the previous flush ran."""

    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[None]], max_batch: int = 200) -> None:
        self._flush_fn = flush
        self.max_batch = max_batch
        self._queued: list[T] = []
        self._task: asyncio.Task[None] | None = None

    def put(self, value: T) -> None:
        self._queued.append(value)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def drain(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued[: self.max_batch], self._queued[self.max_batch:]
                for attempt in range(6):  # a database hiccup: try again for a few seconds
                    try:
                        await self._flush_fn(batch)
                        break
                    except Exception as exc:
                        log.warning("batch.flush_failed", items=len(batch), attempt=attempt + 1, error=type(exc).__name__)
                        await asyncio.sleep(0.1 * 2 ** attempt)
        finally:
            self._task = None


class InboxGroupWriter:
    """Group commit for the intake (Slack acks, SMTP 250s): requests that arrive while a write is in flight are
    stored together by the next one, so a burst of N events costs a few commits, not N,
    and every request is still stored before its own ack."""

    def __init__(self, store: Store, source: str, max_batch: int = 100) -> None:
        self.store = store
        self.source = source
        self.max_batch = max_batch
        self._pending: list[tuple[str, bytes, dict[str, Any], asyncio.Future[int | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def put(self, external_id: str, raw: bytes, meta: dict[str, Any]) -> int | None:
        """The new item's id once stored; None if it was stored before (a retry). Raises if not stored."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append((external_id, raw, meta, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
                try:
                    ids = await self.store.inbox_put_many(self.source, [(e, r, m) for e, r, m, _ in batch])
                except Exception as exc:  # each waiting request answers 503 on its own
                    for *_, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (*_, done), new_id in zip(batch, ids, strict=True):
                    if not done.done():
                        done.set_result(new_id)
        finally:
            self._flusher = None
