"""Slack channel: the web process (`qopi-bot serve`), a thin adapter over the dialogue.

POST /slack/events takes Events API callbacks, the /qopi command and button clicks; GET
/healthz answers 200. One rule shapes the request path: verify, store, ack -- and do
nothing else before the ack. Answers are worked out afterwards from the inbox
(qopi_bot_handlers.slack.inbox -> bolt listeners in qopi_bot_handlers.slack.listeners) and posted from the
outbox (qopi_bot_handlers.slack.delivery), so Slack's 3-second ack limit never waits on the
dialogue or the Web API, and a Slack retry of a stored event finds it already there.

Status codes: 401 for a bad or stale signature (checked before bolt sees anything, so a
forged request changes nothing), 400 for a signed but malformed body, 503 when the event
cannot be stored (Slack retries it), 200 otherwise. Never 500: the process never dies on
input. With `--socket-mode` the same service also takes requests over Socket Mode."""

from __future__ import annotations

import time

from aiohttp import web

from qopi_bot_handlers.slack.events import BadRequest, triage
from qopi_bot_handlers.slack.service import SlackService
from qopi_bot.logs import get_logger
from qopi_bot.settings import Settings

log = get_logger("qopi_bot_handlers.slack.app")

SERVICE = web.AppKey("slack_service", SlackService)
MAX_BODY = 1024 * 1024  # Slack's payloads are a few KB; anything near this is not from Slack


class ConfigurationError(SystemExit):
    """A setting the process cannot run without; the message says which and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"qopi-bot serve: {message}")


def wants_socket_mode(settings: Settings, flag: bool) -> bool:
    """Socket Mode with `--socket-mode`, or when an app token is set and no signing secret:
    that is a Socket Mode app (Slack signs nothing over the socket), not a broken HTTP one."""
    return flag or bool(settings.slack_app_token and not settings.slack_signing_secret)


def check_settings(settings: Settings, socket_mode: bool) -> None:
    if socket_mode and not settings.slack_app_token:
        raise ConfigurationError("--socket-mode needs SLACK_APP_TOKEN (an app-level token, xapp-..., with the "
                                 "connections:write scope; Basic Information > App-Level Tokens in the app's settings).")
    if socket_mode and not settings.slack_app_token.startswith("xapp-"):
        raise ConfigurationError("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")
    if not settings.slack_bot_token:
        raise ConfigurationError("SLACK_BOT_TOKEN is not set (OAuth & Permissions > Bot User OAuth Token, xoxb-...).")
    if not socket_mode and not settings.slack_signing_secret:
        raise ConfigurationError("SLACK_SIGNING_SECRET is not set (Basic Information > App Credentials); "
                                 "without it no request can be verified.")


def create_web_app(settings: Settings, *, api_timeout: float = 10.0, socket_mode: bool = False) -> web.Application:
    """The aiohttp app: routes, plus the Slack service started and stopped with it."""
    app = web.Application(client_max_size=MAX_BODY)
    service = SlackService(settings, api_timeout=api_timeout, socket_mode=wants_socket_mode(settings, socket_mode))
    app[SERVICE] = service
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    from qopi_bot_handlers.console.app import setup_console  # the staff console shares the process's store

    setup_console(app, settings, service.store, notify=lambda: service.dispatcher.notify() if service.dispatcher else None)

    async def start(_app: web.Application) -> None:
        await service.start()

    async def stop(_app: web.Application) -> None:
        await service.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


async def healthz(request: web.Request) -> web.Response:
    # Liveness: 200 while the process serves. `database` says whether events can be stored
    # now (false while the database is unreachable: events then get 503 and Slack retries);
    # `database_state` tells an outage from a busy pool (qopi_bot.health).
    return web.json_response((await request.app[SERVICE].health()).model_dump())


async def slack_events(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    started = time.perf_counter()
    try:
        raw = await request.read()
    except web.HTTPException:
        raise  # 413 for an oversized body: a 4xx, fine as it is
    except Exception:
        return web.json_response({"error": "could not read the request body"}, status=400)
    if service.verifier is None:
        # Socket Mode without a signing secret: nothing may come in over HTTP. A request is
        # never checked against an empty key (anyone can compute that HMAC).
        log.warning("slack.http_refused", reason="no_signing_secret", socket_mode=service.socket_mode)
        return web.json_response({"error": "this app takes events over Socket Mode; HTTP requests are not accepted"},
                                 status=401)
    try:
        valid = service.verifier.is_valid_request(raw, dict(request.headers))
    except (ValueError, TypeError, UnicodeDecodeError):
        valid = False  # a timestamp that is not a number, a body that is not text
    if not valid:
        log.warning("slack.bad_signature", retry_num=request.headers.get("X-Slack-Retry-Num"))
        return web.json_response({"error": "invalid or stale signature"}, status=401)
    try:
        found = triage(raw, request.content_type if request.body_exists else "")
    except BadRequest as exc:
        log.warning("slack.bad_request", error=str(exc))
        return web.json_response({"error": str(exc)}, status=400)
    except Exception as exc:  # whatever a signed body does to the parser, it is the body's fault
        log.error("slack.bad_request", error=type(exc).__name__)
        return web.json_response({"error": "malformed request"}, status=400)
    if found.challenge is not None:
        return web.json_response({"challenge": found.challenge})
    if found.inbound is None:
        return web.Response(status=200)
    retry_num = request.headers.get("X-Slack-Retry-Num")
    meta = {"kind": found.inbound.kind, "conversation": found.inbound.conversation, "content_type": request.content_type,
            "retry_num": retry_num, "retry_reason": request.headers.get("X-Slack-Retry-Reason")}
    try:
        new = await service.accept(found.inbound, raw, meta)
    except Exception as exc:  # not stored: do not ack, so Slack sends it again
        log.error("slack.store_failed", external_id=found.inbound.external_id, error=type(exc).__name__)
        return web.json_response({"error": "temporarily unavailable"}, status=503, headers={"Retry-After": "5"})
    log.info("slack.acked", external_id=found.inbound.external_id, kind=found.inbound.kind, new=new,
             retry_num=retry_num, ms=round((time.perf_counter() - started) * 1000, 1))
    return web.Response(status=200)


def check_schema(settings: Settings) -> None:
    """Say at start when the database is not ready, then start anyway -- the worker does the
    same. Until the schema is current (`qopi-bot db upgrade` on a server database) or the
    database answers, the service keeps checking with backoff, /healthz reports
    `not_ready` and events get 503, so Slack retries them; nothing is lost."""
    import asyncio

    from qopi_bot.migrate import SchemaNotReady, ensure_schema
    from qopi_bot.store import Store

    async def check() -> None:
        store = Store.from_url(settings.db_url)
        try:
            await asyncio.wait_for(ensure_schema(store), timeout=15)
        finally:
            await store.close()

    try:
        asyncio.run(check())
    except SchemaNotReady as exc:
        log.error("slack.database_not_migrated_at_start", detail=str(exc))
    except Exception as exc:
        log.warning("slack.database_unreachable_at_start", error=type(exc).__name__)


def run_web(settings: Settings, socket_mode: bool = False) -> None:
    """`qopi-bot serve [--socket-mode]`: serve on $PORT until SIGTERM/SIGINT."""
    socket_mode = wants_socket_mode(settings, socket_mode)
    check_settings(settings, socket_mode)
    check_schema(settings)
    log.info("slack.serving", port=settings.port, socket_mode=socket_mode)
    # 0.0.0.0: a web dyno/container must accept connections from its platform's router.
    web.run_app(create_web_app(settings, socket_mode=socket_mode), host="0.0.0.0", port=settings.port,
                access_log=None, print=None, shutdown_timeout=10.0)
