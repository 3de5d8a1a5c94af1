"""From the inbox to the bolt app: the half of "store, ack, then process" after the ack.

Every Slack request worth answering is stored in the inbox before it is acknowledged
(qopi_bot_handlers.slack.app for HTTP, `SocketModeIntake` for Socket Mode). `InboxProcessor` claims
stored items with a lease and dispatches them through the bolt AsyncApp, whose listeners
do the work. Because the work is driven by the inbox, not by the request, an item a
crashed process left behind is simply claimed again: pending ones at once, leased ones
when their lease runs out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from qopi_bot_handlers.slack.events import BadRequest, Inbound, triage_socket
from qopi_bot.batching import InboxGroupWriter, ItemBatch
from qopi_bot.logs import get_logger
from qopi_bot.polling import poll_forever
from qopi_bot.records import InboxItem, OutboxItem
from qopi_bot.settings import Settings
from qopi_bot.store import Store
from qopi_bot.unit import Unit

log = get_logger("handlers.slack.inbox")

SOURCE = "slack"
MAX_ATTEMPTS = 5  # a request that fails this often is parked as `failed`, not retried forever

Accept = Callable[[Inbound, bytes, dict[str, Any]], Awaitable[bool]]


def bolt_request(item: InboxItem, unit: Unit | None = None) -> AsyncBoltRequest:
    # The listeners find the item's unit of work in bolt's context (context["unit"]).
    context = {"unit": unit} if unit is not None else None
    if item.meta.get("mode") == "socket_mode":
        return AsyncBoltRequest(body=json.loads(item.payload), mode="socket_mode", context=context)
    content_type = str(item.meta.get("content_type") or "application/json")
    return AsyncBoltRequest(body=item.payload.decode("utf-8"), headers={"content-type": [content_type]},
                            context=context)


def InboxWriter(store: Store, max_batch: int = 100) -> InboxGroupWriter:  # noqa: N802  (the old name)
    """Group commit for the ack path (qopi_bot.batching.InboxGroupWriter) for Slack requests."""
    return InboxGroupWriter(store, SOURCE, max_batch)


class InboxProcessor:
    """Claims stored requests with a lease and runs them, one at a time and in arrival
    order, through the bolt app. One at a time is deliberate: on SQLite the process has one
    connection, so parallel items would only wait for it (and reorder a conversation).

    Each item's writes (its claim, the turn, the answer's outbox row, the inbox finish) form
    one unit of work; the units of a claimed batch commit together (qopi_bot.batching), and
    the answers go straight to the dispatcher, leased to this process."""

    def __init__(self, store: Store, app: AsyncApp, settings: Settings, *, outbox: Callable[[], None],
                 hand_off: Callable[[list[OutboxItem]], None] | None = None, batch: int = 16) -> None:
        self.store = store
        self.app = app
        self.settings = settings
        self.batch = batch
        self.wake = asyncio.Event()
        self._wake_outbox = outbox
        self._hand_off = hand_off
        self._queued = False

    def notify(self) -> None:
        self.wake.set()

    def outbox_queued(self) -> None:
        """Listeners queued a reply. The dispatcher is woken once per batch, not per reply:
        each wake costs it a claim transaction, and under load a batch fills its claims."""
        self._queued = True

    async def run_once(self) -> int:
        claimed = time.monotonic()
        items = await self.store.inbox_claim(SOURCE, self.settings.lease_seconds, self.batch)
        # Up to 12 answers per commit (measured: about 6% less CPU per event than 4 under the
        # benchmark's load): the rows they append share pages, written to the WAL once per
        # commit. The first answer of a batch waits for the others' work, ~2-3 ms each.
        batch = ItemBatch(self.store, self._handed, on_failed=self._commit_failed, max_units=12)
        try:
            for n, item in enumerate(items):
                if time.monotonic() - claimed > self.settings.lease_seconds / 2:
                    # Not started before half the lease was gone: give them back rather than
                    # risk another process taking one over while this one is still on it.
                    await batch.commit()
                    await self.store.inbox_release_unstarted([i.id for i in items[n:]])
                    break
                conversation = item.meta.get("conversation")
                if batch.must_commit_before(conversation):
                    await batch.commit()
                unit = await self._process(item)
                if unit is not None:
                    await batch.add(item, conversation, unit)
            await batch.commit()
        finally:
            if self._queued:
                self._queued = False
                self._wake_outbox()
        return len(items)

    async def _commit_failed(self, item: InboxItem, exc: Exception) -> None:
        """The item's writes could not be committed: like a failing listener, it comes back
        when its lease runs out, and is parked as failed after MAX_ATTEMPTS."""
        if item.attempts >= MAX_ATTEMPTS:
            await self.store.inbox_finish(item.id, "failed", f"could not store the answer: {type(exc).__name__}")
            log.error("slack.inbox_failed", item=item.id, external_id=item.external_id, attempts=item.attempts)
        else:
            log.warning("slack.inbox_retry_later", item=item.id, external_id=item.external_id, attempts=item.attempts,
                        error=type(exc).__name__)

    def _handed(self, leased: list[OutboxItem]) -> None:
        if self._hand_off is not None:
            self._hand_off(leased)
        else:  # no dispatcher of our own here: the rows wait for their lease to run out
            self._queued = True

    async def _process(self, item: InboxItem) -> Unit | None:
        """Run one item; its unit of work to commit, or None when it must be tried again later."""
        started = time.perf_counter()
        unit = Unit(deliver_here=SOURCE if self._hand_off is not None else None, lease_seconds=self.settings.lease_seconds)
        try:
            status = (await self.app.async_dispatch(bolt_request(item, unit))).status
        except Exception as exc:  # bolt catches listener errors; this is for malformed stored bodies
            log.error("slack.inbox_dispatch_failed", item=item.id, error=type(exc).__name__)
            status = 500
        ms = round((time.perf_counter() - started) * 1000, 1)
        if status >= 500:
            if item.attempts >= MAX_ATTEMPTS:
                await self.store.inbox_finish(item.id, "failed", f"listener failed {item.attempts} times")
                log.error("slack.inbox_failed", item=item.id, external_id=item.external_id, attempts=item.attempts)
            else:
                # Keep the lease: the item comes back when it runs out, which is our backoff.
                log.warning("slack.inbox_retry_later", item=item.id, external_id=item.external_id, attempts=item.attempts)
            return None  # whatever the failed listener collected is dropped with it
        outcome = "ignored" if status == 404 else "done"
        await self.store.inbox_finish(item.id, outcome, unit=unit)
        log.info("slack.processed", item=item.id, external_id=item.external_id, kind=item.meta.get("kind"),
                 outcome=outcome, ms=ms, retry_num=item.meta.get("retry_num"))
        return unit

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Process until `stop`; a database outage pauses processing, it never ends it."""
        await poll_forever(self.run_once, stop=stop, wake=self.wake, interval=self.settings.poll_interval,
                           log=log, event="slack.inbox_poll_failed")


class SocketModeIntake(AsyncSocketModeHandler):
    """slack_bolt's Socket Mode handler with our one rule: store first, then ack.

    The envelope is stored in the inbox exactly like an HTTP request (and processed by the
    same InboxProcessor); if it cannot be stored, it is not acked, so Slack sends it again."""

    def __init__(self, app: AsyncApp, app_token: str, accept: Accept, web_client: AsyncWebClient) -> None:
        super().__init__(app, app_token, web_client=web_client)
        self.accept = accept

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        payload = req.payload if isinstance(req.payload, dict) else {}
        try:
            found = triage_socket(req.type, payload)
        except BadRequest as exc:
            log.warning("slack.socket_bad_payload", type=req.type, error=str(exc))
            found = None
        if found is not None and found.inbound is not None:
            meta = {"kind": found.inbound.kind, "conversation": found.inbound.conversation, "mode": "socket_mode",
                    "retry_num": req.retry_attempt}
            try:
                await self.accept(found.inbound, json.dumps(payload).encode(), meta)
            except Exception as exc:
                log.error("slack.socket_store_failed", type=req.type, error=type(exc).__name__)
                return  # no ack: Slack redelivers the envelope
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
