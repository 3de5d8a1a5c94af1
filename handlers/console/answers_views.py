"""The answer log (filterable, CSV), "needs teaching", and the charts page.

All three read the log through qopi_bot.report.AnswerFilter, the filter `qopi-bot report`
uses, so the CSV export and the report count the same rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from qopi_bot.console_auth import Session
from qopi_bot.models import Intent, Outcome
from qopi_bot.report import AnswerFilter, AnswerRow, build_report, fetch_answers
from qopi_bot_handlers.console import charts
from qopi_bot_handlers.console.auth import deps, page, render

PAGE_ROWS = 200
CSV_COLUMNS = ("id", "created_at", "channel", "conversation_key", "question", "intent", "outcome", "verdict", "rules",
               "facts", "case_id", "knowledge_version", "confidence", "understood")
FILTER_KEYS = ("since", "until", "channel", "intent", "outcome", "understood", "text")


def _filter(request: web.Request) -> tuple[AnswerFilter, str | None]:
    raw = {k: v.strip() for k, v in request.query.items() if k in FILTER_KEYS and v.strip()}
    try:
        return AnswerFilter.model_validate(raw), None
    except ValidationError as exc:
        err = exc.errors()[0]
        return AnswerFilter(), f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (filter ignored)"


def _choices() -> dict[str, list[str]]:
    return {"channel": ["slack", "email", "cli"], "intent": [i.value for i in Intent],
            "outcome": [o.value for o in Outcome], "understood": ["clear", "low", "not_understood"]}


def _view(r: AnswerRow) -> dict[str, Any]:
    return {**r.model_dump(), "when": r.created_at.strftime("%Y-%m-%d %H:%M"),
            "confidence_text": "" if r.confidence is None else f"{r.confidence:.2f}"}


@page
async def answers(request: web.Request, session: Session) -> web.StreamResponse:
    flt, problem = _filter(request)
    engine = deps(request).store.engine
    rows = await fetch_answers(engine, flt, limit=PAGE_ROWS + 1)
    query = urlencode([(k, v) for k, v in request.query.items() if k in FILTER_KEYS and v])
    return render(request, "answers.html", session, {
        "rows": [_view(r) for r in rows[:PAGE_ROWS]], "more": len(rows) > PAGE_ROWS, "limit": PAGE_ROWS,
        "f": {k: request.query.get(k, "") for k in FILTER_KEYS}, "choices": _choices(), "problem": problem,
        "csv_query": query, "nav": "answers"})


@page
async def answers_csv(request: web.Request, session: Session) -> web.StreamResponse:
    flt, problem = _filter(request)
    if problem:
        raise web.HTTPBadRequest(text=problem)
    rows = await fetch_answers(deps(request).store.engine, flt, newest_first=False)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.id, r.created_at.isoformat(), r.channel, r.conversation_key, _cell(r.question), r.intent or "",
                         r.outcome, r.verdict or "", " ".join(r.rules), json.dumps(r.facts, sort_keys=True),
                         r.case_id or "", r.knowledge_version, "" if r.confidence is None else r.confidence, r.understood])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="qopi-answers-{stamp}.csv"'})


def _cell(text: str) -> str:
    # A cell starting with = + - @ runs as a formula in a spreadsheet: never let a practice's
    # message do that on a staff member's machine.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def example_yaml(intent: str, question: str) -> str:
    quoted = json.dumps(" ".join(question.split()), ensure_ascii=False)  # a JSON string is valid YAML
    return f"# knowledge/examples/{intent}.yaml, under examples:\n  - {quoted}\n"


@page
async def teaching(request: web.Request, session: Session) -> web.StreamResponse:
    days = _days(request)
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days - 1)
    rows = await fetch_answers(deps(request).store.engine, AnswerFilter(since=since, needs_teaching=True), limit=500)
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:  # the same message asked again is one thing to teach
        key = " ".join(r.question.lower().split())
        if not key:
            continue
        if key in seen:
            seen[key]["times"] += 1
            continue
        intent = r.intent if r.intent and r.intent not in ("greeting",) else "out_of_scope"
        seen[key] = {**_view(r), "times": 1, "suggested": intent, "yaml": example_yaml(intent, r.question)}
    return render(request, "teaching.html", session, {
        "items": list(seen.values()), "days": days, "intents": [i.value for i in Intent], "nav": "teaching"})


def _days(request: web.Request) -> int:
    try:
        return max(1, min(366, int(request.query.get("days", "30"))))
    except ValueError:
        return 30


@page
async def overview(request: web.Request, session: Session) -> web.StreamResponse:
    days = _days(request)
    today = dt.datetime.now(dt.UTC).date()
    since = today - dt.timedelta(days=days - 1)
    engine = deps(request).store.engine
    rows = await fetch_answers(engine, AnswerFilter(since=since), newest_first=False)
    span = charts.days_between(since, today)
    by_intent, legend = charts.per_day_by_intent(rows, span)
    report = await build_report(engine, since)
    return render(request, "charts.html", session, {
        "days": days, "report": report, "per_day": by_intent, "legend": legend,
        "outcomes": charts.outcomes(rows, width=420), "rate": charts.escalation_rate(rows, span, width=420), "nav": "charts"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/answers", answers)
    app.router.add_get("/console/answers.csv", answers_csv)
    app.router.add_get("/console/teaching", teaching)
    app.router.add_get("/console/charts", overview)

