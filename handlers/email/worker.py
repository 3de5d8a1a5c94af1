"""Email channel: the worker process (Procfile `worker: qopi-bot worker`).

SMTP in (aiosmtpd) on QOPI_SMTP_LISTEN -> durable inbox -> dialogue -> durable outbox ->
SMTP out (aiosmtplib) through QOPI_SMTP_RELAY. A message is accepted (250) only once it is
stored; everything after that runs from the database, so a crash loses nothing and the
sending MTA's retries never produce a second answer. This module is the thin adapter:
wiring, the SMTP handler (outcome -> SMTP status, in one place) and the two loops. The
work itself lives in email_parse / email_loops / email_inbound / email_compose /
email_delivery."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
import aiosmtpd.smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP, Envelope, Session

from qopi_bot_handlers.email.delivery import EmailDelivery
from qopi_bot_handlers.email.inbound import InboundProcessor
from qopi_bot_handlers.email.parse import external_id
from qopi_bot.batching import InboxGroupWriter, ItemBatch
from qopi_bot.health import HealthProbe
from qopi_bot.logs import configure_logging, get_logger
from qopi_bot.polling import poll_forever
from qopi_bot.migrate import SchemaNotReady, ensure_schema
from qopi_bot.outbox import Dispatcher
from qopi_bot.reminder_runner import ReminderRunner, fresh_knowledge
from qopi_bot.core.kb import Knowledge
from qopi_bot.live_knowledge import LiveKnowledge
from qopi_bot.runtime import load_kb
from qopi_bot.service import DialogueService
from qopi_bot.settings import Settings
from qopi_bot.records import InboxItem
from qopi_bot.store import Store
from qopi_bot.unit import Unit

log = get_logger("qopi_bot_handlers.email.worker")

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_ATTEMPTS = 5  # a message that fails this often is a bug: kept as `failed`, never retried forever
# Flow control: while more than this many stored messages wait to be processed, the 250 for
# a new one (already stored) waits too, up to BACKLOG_WAIT_SECONDS. A burst then queues at
# the senders, as with any relay, instead of piling up unanswered in the inbox: the reply
# latency stays about MAX_BACKLOG / throughput instead of growing with the burst.
# 32 is about an eighth of a second of work at the measured ~280 mails/s: deep enough that a
# claim and a commit take several mails at once. With 8, as before, eight busy senders kept
# the pipeline half empty (0.68-0.75x the bare relay in bench_email against 0.84-0.91x; reply
# p99 under load 70 ms then, 135-150 ms now, the target being 1 s).
MAX_BACKLOG = 32
BACKLOG_WAIT_SECONDS = 10.0
CLAIM_LIMIT = 10  # stored mails one claim takes
ROOM_RECHECK_SECONDS = 0.2  # a held 250 that long without progress here asks the database whether room was made elsewhere

Accepted = Literal["stored", "duplicate", "store_failed"]

# The one place where what happened to a message becomes an SMTP answer.
SMTP_STATUS: dict[Accepted, str] = {
    "stored": "250 2.0.0 Message accepted",
    "duplicate": "250 2.0.0 Message already received",
    # Temporary: the sending MTA keeps the message and retries, so nothing is lost.
    "store_failed": "451 4.3.0 Temporary failure storing the message, please try again later",
}
TOO_BIG = ("552 5.3.4 Message too big: the QOPI Certification help desk accepts messages up to 10 MB. "
           "Please send your question without the attachment.")


class _AuthMembersOnly:
    """Stands in for the `inspect` module inside aiosmtpd.smtp. Every new SMTP session runs
    `inspect.getmembers(self)` only to pick the `auth_*` methods; getmembers reads every
    attribute of the session (properties included), about 0.2 ms of CPU per connection -- a
    noticeable share of a mail's cost. This gives the same `auth_*` members from `dir()`
    without touching the others; anything else is the real inspect module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def getmembers(obj: object) -> list[tuple[str, Any]]:
        return [(name, getattr(obj, name)) for name in dir(obj) if name.startswith("auth_")]


aiosmtpd_smtp.inspect = _AuthMembersOnly()  # type: ignore[assignment]


class _SMTP(SMTP):
    """aiosmtpd's SMTP with a 552 that tells the sender what to do about it."""

    async def push(self, status: str) -> None:
        if status.startswith("552 "):
            status = TOO_BIG
        await super().push(status)


class InboundSMTPHandler:
    """The aiosmtpd handler: store, then answer. Nothing is processed before the 250."""

    def __init__(self, accept: Callable[[bytes, str, list[str]], Awaitable[Accepted]]) -> None:
        self._accept = accept

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        mail_from = "" if envelope.mail_from in (None, "", "<>") else str(envelope.mail_from)
        return SMTP_STATUS[await self._accept(bytes(raw), mail_from, list(envelope.rcpt_tos))]


class EmailWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kb = load_kb(settings)
        # One SQLite connection: the intake, the processor and the dispatcher then queue for it
        # in order instead of meeting in SQLite's busy handler (sleeps of up to 100 ms).
        self.store = Store.from_url(settings.db_url, sqlite_connections=1)
        self.dialogue = DialogueService(self.store, self.kb, settings)
        self.processor = InboundProcessor(self.store, self.dialogue, settings, self.kb)
        self.delivery = EmailDelivery(self.store, settings, self.kb)
        # Up to 4 replies to different recipients at once, each on a relay connection of its own:
        # a send is mostly waiting for the relay's answers.
        self.dispatcher = Dispatcher(self.store, "email", self.delivery.send, settings, concurrency=4)
        self.reminders = ReminderRunner(self.store, settings, fresh_knowledge(settings, self.kb), self.dispatcher.notify)
        # A changed knowledge folder takes effect in every part that words answers or mail.
        self.live = LiveKnowledge(settings, self.kb)
        self.live.subscribe(self._use_knowledge)
        self._live_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._inbox_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: asyncio.AbstractServer | None = None
        self._schema_ready = False
        self._schema_retry_at = 0.0  # monotonic time of the next schema check while not ready
        self._schema_delay = 0.5
        self.writer = InboxGroupWriter(self.store, "email")  # one commit for every message arriving meanwhile
        self._backlog = 0  # stored by this process's SMTP intake, not processed yet
        self.late_acks = 0  # 250s held the whole BACKLOG_WAIT_SECONDS (a stuck backlog): should stay 0
        self._room = asyncio.Event()
        self.dispatcher.on_progress = self._room.set
        self.health_probe = HealthProbe(self.store.engine)
        self._health_runner: web.AppRunner | None = None

    def _use_knowledge(self, kb: Knowledge) -> None:
        self.kb = self.dialogue.kb = self.processor.kb = self.delivery.kb = kb

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> EmailWorker:
        # aiosmtpd logs every DATA line at DEBUG: message bodies must never reach a log.
        mail_log = logging.getLogger("mail.log")
        if mail_log.getEffectiveLevel() < logging.INFO:
            mail_log.setLevel(logging.INFO)
        # A database that is down or not migrated yet must not keep SMTP down: the worker
        # starts, answers 451 (the sending MTA retries), reports not_ready on /healthz and
        # checks again with backoff until the schema is there (the web process does the same).
        await self._ensure_schema()
        self._live_task = asyncio.create_task(self.live.run_forever(self._stop), name="knowledge-reload")
        if self.settings.imap_host:
            await self._start_health()
            return self._start_imap()
        host, port = self.settings.smtp_listen_host_port
        handler = InboundSMTPHandler(self.accept)
        hostname = self.settings.help_address.rpartition("@")[2] or "localhost"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _SMTP(handler, data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True, hostname=hostname,
                          ident="qopi-bot"),
            host=host, port=port)
        self._tasks = [asyncio.create_task(self._inbox_loop(), name="email-inbox"),
                       asyncio.create_task(self.dispatcher.run_forever(self._stop), name="email-outbox"),
                       asyncio.create_task(self.reminders.run_forever(self._stop), name="email-reminders")]
        await self._start_health()
        log.info("email.worker_started", listen=f"{host}:{self.address[1]}", relay=self.settings.smtp_relay,
                 health=self.settings.worker_health or None)
        return self

    async def _start_health(self) -> None:
        """GET /healthz on QOPI_WORKER_HEALTH, as the web process has: the worker otherwise
        has no HTTP port, and an SMTP banner says nothing about the database."""
        where = self.settings.worker_health_host_port
        if where is None:
            return

        async def healthz(_request: web.Request) -> web.Response:
            health = await self.health_probe.check(self._schema_ready)
            return web.json_response(health.model_dump() | {"smtp": self._server is not None and self._server.is_serving()})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        self._health_runner = web.AppRunner(app, access_log=None)
        await self._health_runner.setup()
        await web.TCPSite(self._health_runner, where[0], where[1]).start()

    @property
    def health_address(self) -> tuple[str, int] | None:
        if self._health_runner is None or not self._health_runner.addresses:
            return None
        host, port = self._health_runner.addresses[0][:2]
        return host, port

    def _start_imap(self) -> EmailWorker:
        """The help mailbox lives on an IMAP server: read it there instead of listening for SMTP."""
        from qopi_bot_handlers.email.imap import ImapIntake

        intake = ImapIntake(self.settings, self.store, stored=self._inbox_wake.set, stop=self._stop)
        self._tasks = [asyncio.create_task(self._inbox_loop(), name="email-inbox"),
                       asyncio.create_task(self.dispatcher.run_forever(self._stop), name="email-outbox"),
                       asyncio.create_task(self.reminders.run_forever(self._stop), name="email-reminders"),
                       asyncio.create_task(intake.run(), name="email-imap")]
        log.info("email.worker_started", imap=f"{self.settings.imap_host}:{self.settings.imap_port}",
                 relay=self.settings.smtp_relay)
        return self

    async def stop(self) -> None:
        self._stop.set()
        self._room.set()
        self._inbox_wake.set()
        self.dispatcher.notify()
        self.reminders.wake.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._tasks, *([self._live_task] if self._live_task else []), return_exceptions=True)
        if self._health_runner is not None:
            await self._health_runner.cleanup()
        await self.health_probe.close()
        await self.delivery.close()
        await self.store.close()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    # ------------------------------------------------------------------ SMTP side
    async def accept(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> Accepted:
        try:
            # A sending MTA is knocking: check now (no backoff), it may just have been migrated.
            if not self._schema_ready and not await self._ensure_schema(now=True):
                return "store_failed"
            item_id = await self.writer.put(external_id(raw), raw,
                                            {"mail_from": mail_from, "rcpt_tos": rcpt_tos, "size": len(raw)})
        except Exception as exc:
            log.error("email.store_failed", error=type(exc).__name__, size=len(raw))
            return "store_failed"
        if item_id is None:
            log.info("email.duplicate", size=len(raw))
            return "duplicate"
        log.info("email.received", inbox=item_id, size=len(raw))
        self._inbox_wake.set()
        self._backlog += 1
        await self._wait_for_room()
        return "stored"

    async def _wait_for_room(self) -> None:
        deadline = time.monotonic() + BACKLOG_WAIT_SECONDS
        while self._backlog + self.dispatcher.handed_open > MAX_BACKLOG and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.late_acks += 1
                log.warning("email.backlog_wait_expired", waiting=self._backlog, seconds=BACKLOG_WAIT_SECONDS)
                return  # stored all the same: the 250 is only late, never withheld
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), min(remaining, ROOM_RECHECK_SECONDS))
            except TimeoutError:
                # Full, and no progress here for a while: `_backlog` counts what this process
                # stored and has not seen processed, and with several workers on one database
                # another one may have answered it without saying so. The database knows. (Only
                # now: asking at every wake-up cost a lone PostgreSQL worker half its throughput.)
                with contextlib.suppress(Exception):  # database trouble: keep this process's count
                    self._backlog = min(self._backlog, await self.store.inbox_waiting("email"))

    def _processed(self, count: int) -> None:
        self._backlog = max(0, self._backlog - count)  # another worker may have taken some: never below 0
        self._room.set()  # the waiters look again (replies still queued count too)

    # ------------------------------------------------------------------ inbox side
    async def _ensure_schema(self, now: bool = False) -> bool:
        """True once the schema is current. Until then the poll loop checks once per backoff
        step (0.5 s doubling to 10 s); an arriving message (`now`) checks at once."""
        if self._schema_ready or (not now and time.monotonic() < self._schema_retry_at):
            return self._schema_ready
        try:
            await ensure_schema(self.store)
            self._schema_ready = True
            log.info("email.schema_ready")
        except SchemaNotReady as exc:
            # An unmigrated server database is the operator's job (`qopi-bot db upgrade`);
            # the worker keeps running and picks the schema up as soon as it is there.
            log.error("email.schema_not_ready", detail=str(exc), retry_in=self._schema_delay)
        except Exception as exc:
            log.warning("email.database_unavailable", error=type(exc).__name__, retry_in=self._schema_delay)
        if not self._schema_ready:
            self._schema_retry_at = time.monotonic() + self._schema_delay
            self._schema_delay = min(10.0, self._schema_delay * 2)
        return self._schema_ready

    async def _inbox_loop(self) -> None:
        async def once() -> int:
            return await self.run_inbox_once() if await self._ensure_schema() else 0

        await poll_forever(once, stop=self._stop, wake=self._inbox_wake, interval=self.settings.poll_interval,
                           log=log, event="email.inbox_poll_failed")

    async def _failed(self, item: InboxItem, exc: Exception, started: float | None = None) -> None:
        """Bad input (or a write that fails) never stops the worker. The item stays leased
        and is tried again when the lease expires; after MAX_ATTEMPTS it is parked as failed."""
        log.error("email.process_failed", inbox=item.id, attempts=item.attempts, error=type(exc).__name__,
                  ms=round((time.perf_counter() - started) * 1000, 1) if started is not None else None)
        if item.attempts >= MAX_ATTEMPTS:
            try:
                await self.store.inbox_finish(item.id, "failed", type(exc).__name__)
            except Exception:
                pass

    async def run_inbox_once(self) -> int:
        claimed = time.monotonic()
        items = await self.store.inbox_claim("email", self.settings.lease_seconds, limit=CLAIM_LIMIT)
        # Each message's writes (turn, thread links, reply, inbox finish) are one unit; the
        # batch's units commit together and the replies go straight to the dispatcher.
        # A claim's items commit together (all CLAIM_LIMIT of them): fewer commits per mail, and
        # a commit of the intake (the next 250s) waits behind one claim's writes at most.
        batch = ItemBatch(self.store, self.dispatcher.hand_off, on_failed=self._failed, max_units=CLAIM_LIMIT)
        for n, item in enumerate(items):
            if self._stop.is_set():
                break  # leased items come back when the lease runs out
            if time.monotonic() - claimed > self.settings.lease_seconds / 2:
                # Not started before half the lease was gone: give them back rather than
                # risk another worker taking one over while this one is still on it.
                await batch.commit()
                await self.store.inbox_release_unstarted([i.id for i in items[n:]])
                break
            started = time.perf_counter()
            unit = Unit(deliver_here="email", lease_seconds=self.settings.lease_seconds)
            try:
                result = await self.processor.process(item, today=dt.date.today(), unit=unit, settle=batch.settle)
                await self.store.inbox_finish(item.id, result.inbox_status, result.detail, unit=unit)
                await batch.add(item, None, unit, result.keys)
            except Exception as exc:
                await self._failed(item, exc, started)
        await batch.commit()
        if items:  # staff mail, relays and other rows queued outside the units
            self._processed(len(items))
            self.dispatcher.notify()
        return len(items)


async def start_worker(settings: Settings) -> EmailWorker:
    """Start a worker on the running loop (tests and the benchmark run it in-process)."""
    return await EmailWorker(settings).start()


def run_worker(settings: Settings) -> None:
    """`qopi-bot worker`: run until SIGTERM/SIGINT, then stop cleanly."""

    # The CLI configures warnings only; a long-running worker reports what it does (ids,
    # outcomes and timings: the log processors withhold bodies and scrub identifiers).
    configure_logging(settings.log_format, level=logging.INFO)

    async def main() -> None:
        worker = await start_worker(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker._stop.set)
        await worker.wait_stopped()
        await worker.stop()

    try:
        asyncio.run(main())
    except SchemaNotReady as exc:
        sys.stderr.write(f"qopi-bot worker: {exc}\n")
        raise SystemExit(2) from None
