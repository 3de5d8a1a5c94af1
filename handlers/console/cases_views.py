"""The case queue and one case with its transcript; claim, reply and resolve.

Every action goes through qopi_bot.cases.CaseService, the one Slack and email use: a claim
here updates the case message in the staff channel, and a reply reaches the practice in the
thread where it asked (and is noted in the case's Slack thread)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from qopi_bot.cases import CHANNEL_LABEL, REASON_LABEL, CaseService, summarize
from qopi_bot.clock import utcnow
from qopi_bot.console_auth import Session
from qopi_bot.privacy import scrub
from qopi_bot.records import CaseRecord, parse_case_label
from qopi_bot_handlers.console.auth import action, deps, page, render

STATUSES = ("active", "open", "claimed", "resolved", "all")


def age(when: Any) -> str:
    if when is None:
        return "?"
    seconds = max(0, int((utcnow() - when).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def _row(case: CaseRecord) -> dict[str, Any]:
    return {"id": case.id, "status": case.status, "reason": case.reason, "why": REASON_LABEL.get(case.reason, case.reason),
            "channel": CHANNEL_LABEL.get(case.channel, case.channel), "age": age(case.created_at),
            "created": case.created_at.strftime("%Y-%m-%d %H:%M UTC") if case.created_at else "",
            "claimed_by": case.claimed_by, "question": scrub(case.question)[:140]}


@page
async def queue(request: web.Request, session: Session) -> web.StreamResponse:
    status = request.query.get("status", "active")
    if status not in STATUSES:
        status = "active"
    store = deps(request).store
    found = await store.list_cases(None if status in ("active", "all") else status)
    if status == "active":
        found = [c for c in found if c.status != "resolved"]
    found.sort(key=lambda c: (c.status == "resolved", c.status == "claimed", c.number))
    counts: dict[str, int] = {"open": 0, "claimed": 0, "resolved": 0}
    for c in await store.list_cases(None):
        counts[c.status] = counts.get(c.status, 0) + 1
    return render(request, "queue.html", session, {"cases": [_row(c) for c in found], "status": status,
                                                   "counts": counts, "nav": "queue", "nonce": secrets.token_urlsafe(12)})


async def _case_or_404(request: web.Request) -> CaseRecord:
    number = parse_case_label(request.match_info["case_id"])
    case = await deps(request).store.get_case(number) if number is not None else None
    if case is None:
        raise web.HTTPNotFound(text="There is no such case.")
    return case


@page
async def case_page(request: web.Request, session: Session) -> web.StreamResponse:
    case = await _case_or_404(request)
    store = deps(request).store
    transcript = [{"role": role, "author": author or role,
                   # Practice words are scrubbed of patient identifiers, as everywhere staff see them.
                   "text": scrub(text) if role == "practice" else text}
                  for role, author, text in await store.transcript(case.conversation_key, limit=200)]
    events = [{"kind": e.kind.replace("_", " "), "author": e.author or "", "when": age(e.created_at)}
              for e in case.events if e.kind in ("opened", "claimed", "resolved", "reopened", "staff_reply")]
    return render(request, "case.html", session, {
        "case": _row(case), "summary": summarize(case), "transcript": transcript, "events": events, "nav": "queue",
        "nonce": secrets.token_urlsafe(12), "flash": request.query.get("done", "")})


def _back(case_id: str, message: str) -> web.HTTPSeeOther:
    from urllib.parse import quote

    return web.HTTPSeeOther(f"/console/cases/{case_id}?done={quote(message)}")


@action
async def claim(request: web.Request, session: Session, form: Any) -> web.StreamResponse:
    d = deps(request)
    ok, message = await CaseService(d.store, d.settings).claim(request.match_info["case_id"], who=session.user_id)
    d.notify()
    raise _back(request.match_info["case_id"], message)


@action
async def resolve(request: web.Request, session: Session, form: Any) -> web.StreamResponse:
    d = deps(request)
    ok, message = await CaseService(d.store, d.settings).resolve(request.match_info["case_id"], who=session.user_id)
    d.notify()
    raise _back(request.match_info["case_id"], message)


@action
async def reply(request: web.Request, session: Session, form: Any) -> web.StreamResponse:
    d = deps(request)
    text = str(form.get("text") or "")
    # The form's nonce keys the outbox item: submitting the same form twice sends one reply.
    nonce = str(form.get("nonce") or secrets.token_urlsafe(12))[:40]
    ok, message = await CaseService(d.store, d.settings).reply(request.match_info["case_id"], who=session.user_id,
                                                               text=text, via="console", event_key=f"console:{nonce}")
    d.notify()
    raise _back(request.match_info["case_id"], message)
