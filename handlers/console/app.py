"""Mount the staff console on the web process's aiohttp app (contract section 9).

GET /console/signin?token=... spends a one-time link (qopi-bot console link, or /qopi console
in Slack), sets an HttpOnly, SameSite=Strict session cookie and redirects to /console.
Every other page needs that session; every POST also needs its CSRF token."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from qopi_bot.console_auth import end_session, redeem_link
from qopi_bot.logs import get_logger
from qopi_bot.settings import Settings
from qopi_bot.store import Store
from qopi_bot_handlers.console import answers_views, cases_views
from qopi_bot_handlers.console.auth import COOKIE, DEPS, SECURITY_HEADERS, ConsoleDeps, action, signin_hint

HERE = Path(__file__).parent
log = get_logger("qopi_bot_handlers.console")


def setup_console(app: web.Application, settings: Settings, store: Store, notify: Callable[[], None] | None = None) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                               undefined=jinja2.StrictUndefined)
    env.globals["STATUS_LABEL"] = {"open": "Open", "claimed": "Claimed", "resolved": "Resolved"}
    env.globals["static"] = _static_url
    app[DEPS] = ConsoleDeps(settings=settings, store=store, notify=notify or (lambda: None))
    app.router.add_get("/console", cases_views.queue)
    app.router.add_get("/console/", cases_views.queue)
    app.router.add_get("/console/signin", signin)
    app.router.add_post("/console/signout", signout)
    app.router.add_get("/console/cases/{case_id}", cases_views.case_page)
    app.router.add_post("/console/cases/{case_id}/claim", cases_views.claim)
    app.router.add_post("/console/cases/{case_id}/reply", cases_views.reply)
    app.router.add_post("/console/cases/{case_id}/resolve", cases_views.resolve)
    answers_views.add_routes(app)
    app.router.add_static("/console/static", str(HERE / "static"))


def _static_url(name: str) -> str:
    # The file's hash in the URL: a browser never keeps a stale stylesheet after an upgrade.
    digest = hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]
    return f"/console/static/{name}?v={digest}"


async def signin(request: web.Request) -> web.StreamResponse:
    d = request.app[DEPS]
    token = request.query.get("token", "")
    redeemed = await redeem_link(d.store.engine, token, d.settings.staff_user_ids) if token else None
    if redeemed is None:
        log.warning("console.signin_refused")
        return signin_hint(request, message="This sign-in link is not valid: it has expired (links last 15 minutes), "
                                             "was already used, or was not made for QCP staff. Ask for a new one.")
    cookie, session = redeemed
    log.info("console.signed_in", user=session.user_id)
    response = web.Response(status=303, headers={"Location": "/console"})
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path="/console",
                        secure=d.settings.console_base_url.startswith("https://"), max_age=12 * 3600)
    response.headers.update(SECURITY_HEADERS)
    return response


@action
async def signout(request: web.Request, session: object, form: object) -> web.StreamResponse:
    await end_session(request.app[DEPS].store.engine, request.cookies.get(COOKIE, ""))
    response = signin_hint(request, status=200, message="You are signed out.")
    response.del_cookie(COOKIE, path="/console")
    return response
