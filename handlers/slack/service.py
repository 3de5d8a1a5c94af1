"""The Slack process's moving parts, started and stopped together.

store + dialogue (qopi_bot), a bolt AsyncApp with our listeners, the inbox processor that
feeds it, and the outbox dispatcher whose sender is the only Web API caller. The database
may be down when the process starts: the service keeps trying, and until it is reachable
`accept` raises, so the web layer answers 503 and Slack retries later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.signature import SignatureVerifier

from qopi_bot_handlers.slack.catchup import CatchUp
from qopi_bot_handlers.slack.delivery import SlackSender, close_quietly, web_client
from qopi_bot_handlers.slack.events import Inbound
from qopi_bot_handlers.slack.inbox import InboxProcessor, InboxWriter, SocketModeIntake
from qopi_bot_handlers.slack.listeners import SlackDeps, register
from qopi_bot.health import Health, HealthProbe
from qopi_bot.live_knowledge import LiveKnowledge
from qopi_bot.logs import get_logger
from qopi_bot.migrate import SchemaNotReady
from qopi_bot.outbox import Dispatcher
from qopi_bot.reminder_runner import ReminderRunner, fresh_knowledge
from qopi_bot.runtime import load_kb, prepare_schema
from qopi_bot.service import DialogueService
from qopi_bot.settings import Settings
from qopi_bot.store import Store, StoreUnavailable

log = get_logger("qopi_bot_handlers.slack.app")


def build_bolt_app(settings: Settings, client: Any) -> AsyncApp:
    """A bolt app for dispatching stored requests, not for serving HTTP itself.

    We verify signatures and answer url_verification before anything is stored, and our
    own filter drops bot and self messages, so those bolt middlewares are off. Bolt would
    call auth.test to authorize each workspace; with one bot token we answer ourselves,
    so processing never waits on the Web API."""

    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                               bot_token=settings.slack_bot_token or None)

    quiet = logging.getLogger("qopi_bot.slack_bolt")  # bolt's warnings can quote request bodies
    quiet.setLevel(logging.ERROR)
    return AsyncApp(name="qopi-bot", logger=quiet, client=client, authorize=authorize, process_before_response=True,
                    signing_secret=settings.slack_signing_secret or "unused", request_verification_enabled=False,
                    ignoring_self_events_enabled=False, ssl_check_enabled=False, url_verification_enabled=False)


class SlackService:
    def __init__(self, settings: Settings, *, api_timeout: float = 10.0, socket_mode: bool = False) -> None:
        self.settings = settings
        self.api_timeout = api_timeout
        self.socket_mode = socket_mode
        # No secret (a Socket Mode app): no verifier, and the HTTP route refuses everything.
        self.verifier = SignatureVerifier(settings.slack_signing_secret) if settings.slack_signing_secret else None
        self.kb = load_kb(settings)  # a broken knowledge base stops the process here, with its message
        self.live = LiveKnowledge(settings, self.kb)  # later changes are applied while running
        # One SQLite connection for the whole process: acks and processing queue in order
        # for it instead of polling SQLite's lock (see Store.from_url). No effect on PostgreSQL.
        self.store = Store.from_url(settings.db_url, sqlite_connections=1)
        self.writer = InboxWriter(self.store)
        self.health_probe = HealthProbe(self.store.engine)
        self.ready = False
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._socket: SocketModeIntake | None = None
        self._socket_task: asyncio.Task[None] | None = None
        self.processor: InboxProcessor | None = None
        self._catchup: CatchUp | None = None
        self._catchup_task: asyncio.Task[int] | None = None
        self.dispatcher: Dispatcher | None = None
        self.reminders: ReminderRunner | None = None

    async def start(self) -> None:
        # One session for every Web API call (connection reuse). slack_sdk ignores its own
        # `timeout` when handed a session, so the timeout lives here.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.api_timeout))
        sender_client = web_client(self.settings, self._session, self.api_timeout)
        # Bolt gets a token-less client (the token comes from `authorize`; bolt warns when it
        # gets both). Listeners never use it: only the sender calls the Web API.
        bolt = build_bolt_app(self.settings, web_client(self.settings.model_copy(update={"slack_bot_token": ""}),
                                                        self._session, self.api_timeout))
        dialogue = DialogueService(self.store, self.kb, self.settings)
        self.live.subscribe(lambda kb: setattr(dialogue, "kb", kb))
        self._tasks.append(asyncio.create_task(self.live.run_forever(self.stop_event), name="knowledge-reload"))
        sender = SlackSender(self.settings, self.store, sender_client, self._session, self.api_timeout)
        self._catchup = CatchUp(self.store, sender_client, self.settings, self.accept)
        self.dispatcher = Dispatcher(self.store, "slack", sender.send, self.settings, concurrency=16)
        self.processor = InboxProcessor(self.store, bolt, self.settings, outbox=self.dispatcher.notify,
                                        hand_off=self.dispatcher.hand_off)
        register(bolt, SlackDeps(self.settings, self.store, dialogue, self.processor.outbox_queued))
        if self.socket_mode:
            self._socket = SocketModeIntake(bolt, self.settings.slack_app_token, self.accept, sender_client)
        self._tasks.append(asyncio.create_task(self._run()))

    async def _run(self) -> None:
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                await prepare_schema(self.store)
                break
            except SchemaNotReady as exc:  # an unmigrated server database: say which command fixes it
                log.error("slack.database_not_migrated", detail=str(exc), retry_in=delay)
            except Exception as exc:  # keep the process up; Slack retries what we refuse meanwhile
                log.error("slack.database_unreachable", error=type(exc).__name__, retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), delay)
            delay = min(10.0, delay * 2)
        if self.stop_event.is_set():
            return
        self.ready = True
        assert self.processor is not None and self.dispatcher is not None
        log.info("slack.ready", socket_mode=self.socket_mode)
        if self._catchup is not None and self.settings.slack_bot_token:
            # What was asked while this process was down and Slack gave up retrying.
            self._catchup_task = asyncio.create_task(self._catchup.run(), name="slack-catchup")
        if self._socket is not None:
            # Its own task: slack_sdk's connect() retries (sleeping) until the client is
            # closed, and shutdown must be able to cancel it without waiting.
            self._socket_task = asyncio.create_task(self._connect_socket(self._socket))
        self.reminders = ReminderRunner(self.store, self.settings, fresh_knowledge(self.settings, self.kb),
                                        self.dispatcher.notify)
        await asyncio.gather(self.processor.run_forever(self.stop_event), self.dispatcher.run_forever(self.stop_event),
                             self.reminders.run_forever(self.stop_event))

    async def _connect_socket(self, socket: SocketModeIntake) -> None:
        """Open the Socket Mode connection, retrying with backoff; once open, slack_sdk's
        client reconnects by itself. Failing to connect never stops the processing."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                await socket.connect_async()
                log.info("slack.socket_mode_connected")
                return
            except Exception as exc:
                log.error("slack.socket_mode_connect_failed", error=type(exc).__name__, retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), delay)
            delay = min(60.0, delay * 2)

    async def health(self) -> Health:
        """Asked by /healthz: can events be stored now, and if not, why (qopi_bot.health)."""
        return await self.health_probe.check(self.ready)

    async def accept(self, inbound: Inbound, raw: bytes, meta: dict[str, Any]) -> bool:
        """Store a request before it is acknowledged. True if new, False for a retry we
        already have. Raises when it cannot be stored: then the caller must not ack."""
        if not self.ready or self.processor is None:
            raise StoreUnavailable("database not ready")
        new = await self.writer.put(inbound.external_id, raw, meta)
        if not new:
            log.info("slack.duplicate", external_id=inbound.external_id, retry_num=meta.get("retry_num"))
            return False
        self.processor.notify()
        return True

    async def close(self) -> None:
        self.stop_event.set()
        if self._socket_task is not None:
            self._socket_task.cancel()
        if self._catchup_task is not None:
            self._catchup_task.cancel()
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
        if self.processor is not None:
            self.processor.notify()
        if self.dispatcher is not None:
            self.dispatcher.notify()
        if self.reminders is not None:
            self.reminders.wake.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("slack.task_failed", error=type(task.exception()).__name__)
        await close_quietly(self._session)
        await self.health_probe.close()
        await self.store.close()
