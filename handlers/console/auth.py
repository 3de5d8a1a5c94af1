"""Who is signed in to the console, and the guards every page and form goes through.

No session: 401 with a sign-in hint and nothing else (no case or answer data). A POST
without the session's CSRF token: 403, nothing changes. Sessions and links live in the
database (qopi_bot.console_auth), so any web process can serve any staff member."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from qopi_bot.console_auth import Session, csrf_ok, session_for
from qopi_bot.settings import Settings
from qopi_bot.store import Store

COOKIE = "qopi_console"


@dataclass
class ConsoleDeps:
    settings: Settings
    store: Store
    notify: Callable[[], None]  # wake the outbox dispatcher: a reply or claim goes out now


DEPS = web.AppKey("console_deps", ConsoleDeps)
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]

# Pages are ours alone: no scripts or styles from anywhere else, no framing, no referrer
# (a sign-in link must not leak to another site through the Referer header).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def deps(request: web.Request) -> ConsoleDeps:
    return request.app[DEPS]


async def current_session(request: web.Request) -> Session | None:
    d = deps(request)
    return await session_for(d.store.engine, request.cookies.get(COOKIE), d.settings.staff_user_ids)


def signin_hint(request: web.Request, status: int = 401, message: str | None = None) -> web.Response:
    response = aiohttp_jinja2.render_template("signin.html", request, {"message": message, "session": None},
                                              status=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page for signed-in staff only."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            return signin_hint(request)
        response = await handler(request, session)
        response.headers.update(SECURITY_HEADERS)
        return response

    return guarded


def action(handler: Callable[[web.Request, Session, Any], Awaitable[web.StreamResponse]]
           ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST for signed-in staff whose form echoes the session's CSRF token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            return signin_hint(request)
        form = await request.post()
        if not csrf_ok(session, form.get("csrf") if isinstance(form.get("csrf"), str) else None):
            return signin_hint(request, status=403, message="That form had expired or did not come from this console. "
                                                            "Nothing was changed; please try again.")
        return await handler(request, session, form)

    return guarded


def render(request: web.Request, template: str, session: Session, context: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {"session": session, **context})
