"""Delivery from the durable outbox, shared by every channel.

A channel supplies `send(item)`; the dispatcher claims due items with a lease, calls it,
and records the result. Temporary failures are retried with capped exponential backoff
and jitter (or exactly the server's Retry-After); an item is given up only after a long,
configurable time, and then stays visible as `failed` (`qopi-bot outbox list`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from qopi_bot.batching import GroupCommit
from qopi_bot.logs import get_logger
from qopi_bot.polling import poll_forever
from qopi_bot.records import OutboxItem
from qopi_bot.settings import Settings
from qopi_bot.store import Store, utcnow

log = get_logger("qopi_bot.outbox")


class DeliveryError(Exception):
    """A send that did not happen. `permanent` errors are not retried."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


Sender = Callable[[OutboxItem], Awaitable[dict[str, Any] | None]]


def backoff_seconds(attempts: int, cap: float, base: float = 1.0, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with 'equal jitter': half fixed, half random."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def order_key(item: OutboxItem) -> tuple[object, ...]:
    """Items with the same key go out one after the other, in order (one thread, one
    recipient); items with different keys may be sent at the same time."""
    p = item.payload
    return (item.recipient, p.get("channel"), p.get("thread_ts"), p.get("case"), p.get("to"))


class Dispatcher:
    def __init__(self, store: Store, channel: str, send: Sender, settings: Settings, *, concurrency: int = 1) -> None:
        self.store = store
        self.channel = channel
        self.send = send
        self.settings = settings
        # Sends in flight at once. A Web API call is a round trip the process would otherwise
        # sit out; a channel with one connection (the SMTP relay) keeps 1.
        self.concurrency = max(1, concurrency)
        self.wake = asyncio.Event()
        self._handed: list[OutboxItem] = []
        self.handed_open = 0  # handed-off items not yet sent or given back (a channel's flow control reads it)
        self.on_progress: Callable[[], None] | None = None  # called when handed_open went down
        # "Sent" marks are group-committed: one transaction for every send that finished meanwhile.
        self._sent: GroupCommit[tuple[int, dict[str, Any] | None]] = GroupCommit(store.outbox_sent_many)

    def notify(self) -> None:
        """Something was just queued: look now instead of waiting for the next poll."""
        self.wake.set()

    def hand_off(self, items: list[OutboxItem]) -> None:
        """Items this process committed already leased to itself (qopi_bot.unit): send them
        now, without a claim. If the process dies first, their lease runs out as usual."""
        self._handed.extend(items)
        self.handed_open += len(items)
        self.wake.set()

    async def run_once(self, limit: int = 20) -> int:
        lease = self.settings.lease_seconds
        handed = bool(self._handed)
        if handed:
            items, self._handed = self._handed, []
            oldest = min((i.created_at for i in items if i.created_at), default=None)
            age = (utcnow() - oldest).total_seconds() if oldest else 0.0
            claimed = time.monotonic() - age  # their lease started when they were written
        else:
            claimed = time.monotonic()
            items = await self.store.outbox_claim(self.channel, lease, limit)
        groups: dict[tuple[object, ...], list[OutboxItem]] = {}
        for item in items:
            groups.setdefault(order_key(item), []).append(item)
        slots = asyncio.Semaphore(self.concurrency)
        unstarted: list[OutboxItem] = []
        settled = 0  # handed-off items already counted out of handed_open

        def one_done() -> None:
            # Flow control reads handed_open: count each handed item out as soon as it is
            # sent, not when the whole batch is, so waiting senders hear of room at once.
            nonlocal settled
            if handed:
                settled += 1
                self.handed_open = max(0, self.handed_open - 1)
                if self.on_progress is not None:
                    self.on_progress()

        async def run_group(group: list[OutboxItem]) -> None:
            for n, item in enumerate(group):
                async with slots:
                    if time.monotonic() - claimed > lease / 2:
                        # Slow sends ate the lease: an item started now could still be mid-send
                        # when its lease runs out and another process takes it (and sends it
                        # too). Give the rest back; whoever claims them next has a full lease.
                        unstarted.extend(group[n:])
                        return
                    await self._deliver(item)
                    one_done()

        try:
            await asyncio.gather(*(run_group(g) for g in groups.values()))
            if unstarted:
                await self.store.outbox_release([i.id for i in unstarted])
                log.info("outbox.released", channel=self.channel, items=len(unstarted))
            await self._sent.drain()  # the batch's "sent" marks are committed before the next claim
        finally:
            if handed:
                self.handed_open = max(0, self.handed_open - (len(items) - settled))
                if self.on_progress is not None:
                    self.on_progress()
        return len(items)

    async def _deliver(self, item: OutboxItem) -> None:
        # A send can outlast the lease (a slow relay, a Slack API taking its time): keep the
        # lease alive while it runs, or another process would take the item over and send
        # it a second time.
        # The keeper task is only started once a third of the lease has gone by: most sends
        # finish long before, and a task per send (created, cancelled, awaited) was a
        # noticeable share of what delivering a reply costs.
        keeper: list[asyncio.Task[None]] = []
        lease = self.settings.lease_seconds
        timer = asyncio.get_running_loop().call_later(
            lease / 3, lambda: keeper.append(asyncio.create_task(self._keep_lease(item.id), name=f"lease-{item.id}")))
        try:
            await self._attempt(item)
        finally:
            timer.cancel()
            for task in keeper:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _keep_lease(self, item_id: int) -> None:
        lease = self.settings.lease_seconds
        while True:
            try:
                if not await self.store.outbox_renew(item_id, lease):
                    log.warning("outbox.lease_lost", channel=self.channel, item=item_id)
                    return
            except Exception as exc:  # the database hiccuped: try again at the next tick
                log.warning("outbox.lease_renew_failed", channel=self.channel, item=item_id, error=type(exc).__name__)
            await asyncio.sleep(lease / 3)

    async def _attempt(self, item: OutboxItem) -> None:
        try:
            result = await self.send(item)
        except DeliveryError as exc:
            await self._failed_attempt(item, str(exc), exc.retry_after, exc.permanent)
            return
        except Exception as exc:  # a bug in one item must not stop delivery of the others
            await self._failed_attempt(item, f"{type(exc).__name__}: {exc}", None, False)
            return
        self._sent.put((item.id, result))
        log.info("outbox.sent", channel=self.channel, kind=item.kind, item=item.id, attempts=item.attempts)

    async def _failed_attempt(self, item: OutboxItem, error: str, retry_after: float | None, permanent: bool) -> None:
        age = (utcnow() - item.created_at).total_seconds() if item.created_at else 0
        if permanent or age > self.settings.outbox_give_up_after_seconds:
            await self.store.outbox_failed(item.id, error[:500])
            log.error("outbox.failed", channel=self.channel, kind=item.kind, item=item.id, attempts=item.attempts,
                      error=error[:200], permanent=permanent)
            return
        delay = retry_after if retry_after is not None else backoff_seconds(item.attempts, self.settings.outbox_max_backoff_seconds)
        await self.store.outbox_retry(item.id, utcnow() + dt.timedelta(seconds=delay), error[:500])
        log.warning("outbox.retry", channel=self.channel, kind=item.kind, item=item.id, attempts=item.attempts,
                    delay=round(delay, 2), error=error[:200])

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set. A database outage pauses delivery; it never ends it."""
        await poll_forever(self.run_once, stop=stop, wake=self.wake, interval=self.settings.poll_interval,
                           log=log, event="outbox.poll_failed", channel=self.channel)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every finished send is recorded (the end of a run, tests)."""
        await self._sent.drain()
