"""The staff side of the CLI: cases, outbox, schema. Output is a table or JSON."""

from __future__ import annotations

import json
import uuid
from typing import Any

import typer

from qopi_bot.cases import CaseService, summarize
from qopi_bot.records import parse_case_label
from qopi_bot.reminder_cli import reminder_line
from qopi_bot.reminder_store import ReminderStore
from qopi_bot.runtime import open_runtime


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str))


async def list_cases(settings: Any, status: str | None, as_json: bool) -> None:
    async with open_runtime(settings) as rt:
        found = await rt.store.list_cases(status)
    if as_json:
        _echo_json([c.summary_json() for c in found])
        return
    if not found:
        typer.echo("no cases" + (f" with status {status}" if status else ""))
        return
    for c in found:
        who = f" ({c.claimed_by})" if c.claimed_by else ""
        created = c.created_at.strftime("%Y-%m-%d %H:%M") if c.created_at else "?"
        typer.echo(f"{c.id}  {c.status:<8}{who}  {c.reason:<16}  {c.channel:<5}  {created}  {summarize(c).question[:60]}")


async def show_case(settings: Any, label: str, as_json: bool) -> None:
    number = parse_case_label(label)
    async with open_runtime(settings) as rt:
        case = await rt.store.get_case(number) if number is not None else None
        transcript = await rt.store.transcript(case.conversation_key) if case else []
        reminders = await ReminderStore(rt.store).list(case.conversation_key) if case else []
    if case is None:
        typer.echo(f"qopi-bot: no case {label}", err=True)
        raise typer.Exit(1)
    s = summarize(case)
    if as_json:
        data = case.summary_json() | {"why": s.why, "facts": s.facts, "decision": case.decision, "origin_channel": case.channel,
                                      "events": [e.model_dump(mode="json") for e in case.events],
                                      "transcript": [{"role": r, "author": a, "text": t} for r, a, t in transcript],
                                      "reminders": [r.summary_json() for r in reminders]}
        _echo_json(data)
        return
    typer.echo(f"{s.id}  [{s.status}]  asked via {s.channel}" + (f"  claimed by {s.claimed_by}" if s.claimed_by else ""))
    typer.echo(f"Why staff: {s.why}")
    typer.echo(f"Question: {s.question}")
    typer.echo("Facts: " + (", ".join(f"{k}={v}" for k, v in s.facts.items()) or "none yet"))
    typer.echo(f"Bot so far: {s.decision_text}")
    refused = [e for e in case.events if e.kind == "staff_reply_refused"]
    if refused:
        # Mail from a staff address that could not prove it answers the case mail: possibly
        # forged. Never relayed; listed so staff notice someone is trying.
        typer.echo(f"Refused staff replies ({len(refused)}):")
        for e in refused:
            when = e.created_at.strftime("%Y-%m-%d %H:%M") if e.created_at else "?"
            typer.echo(f"  {when}  from {e.author or '?'}: {e.text or 'not relayed'}")
    if reminders:  # what the practice will still hear from the bot (a resolved case does not stop it)
        typer.echo(f"Reminders ({len(reminders)}):")
        for r in reminders:
            typer.echo("  " + reminder_line(r.summary_json()))
    typer.echo("Transcript:")
    for role, author, text in transcript:
        typer.echo(f"  {role}{f' ({author})' if author else ''}: {text}")


async def reply_case(settings: Any, label: str, text: str, who: str) -> None:
    async with open_runtime(settings) as rt:
        ok, message = await CaseService(rt.store, settings).reply(label, who, text, via="cli", event_key=uuid.uuid4().hex)
    typer.echo(message, err=not ok)
    if not ok:
        raise typer.Exit(1)


async def resolve_case(settings: Any, label: str, who: str) -> None:
    async with open_runtime(settings) as rt:
        ok, message = await CaseService(rt.store, settings).resolve(label, who)
    typer.echo(message, err=not ok)
    if not ok:
        raise typer.Exit(1)


async def list_outbox(settings: Any, status: str | None, as_json: bool) -> None:
    async with open_runtime(settings) as rt:
        items = await rt.store.outbox_list(status)
    if as_json:
        _echo_json([i.model_dump(mode="json", exclude={"payload"}) for i in items])
        return
    if not items:
        typer.echo("outbox is empty" + (f" for status {status}" if status else ""))
    for i in items:
        typer.echo(f"#{i.id} {i.channel:<5} {i.kind:<18} {i.status:<7} attempts={i.attempts} "
                   f"to={i.recipient or '-'} {('error: ' + i.last_error) if i.last_error else ''}")


async def retry_outbox(settings: Any, ids: list[int]) -> None:
    await _requeue(settings, ids, lambda store: store.outbox_requeue(ids), "send them")


async def _requeue(settings: Any, ids: list[int], requeue: Any, then: str) -> None:
    """Put failed items back in their queue; name the ones that were not failed (exit 1)."""
    async with open_runtime(settings) as rt:
        requeued = await requeue(rt.store)
    skipped = sorted(set(ids) - set(requeued))
    if requeued:
        typer.echo(f"queued again: {', '.join(f'#{i}' for i in requeued)} (the running processes {then} on their next poll)")
    if skipped:
        typer.echo(f"not failed (or unknown), left alone: {', '.join(f'#{i}' for i in skipped)}", err=True)
        raise typer.Exit(1)


async def list_inbox(settings: Any, status: str | None, as_json: bool) -> None:
    async with open_runtime(settings) as rt:
        items = await rt.store.inbox_list(status)
    if as_json:
        _echo_json([{k: (v.isoformat() if hasattr(v, "isoformat") and v is not None else v) for k, v in i.items()}
                    for i in items])
        return
    if not items:
        typer.echo("inbox is empty" + (f" for status {status}" if status else ""))
    for i in items:
        created = i["created_at"].strftime("%Y-%m-%d %H:%M") if i["created_at"] else "?"
        typer.echo(f"#{i['id']} {i['source']:<5} {i['status']:<7} attempts={i['attempts']} {created} "
                   f"{i['external_id'][:60]} {('error: ' + i['last_error']) if i['last_error'] else ''}")


async def retry_inbox(settings: Any, ids: list[int]) -> None:
    await _requeue(settings, ids, lambda store: store.inbox_requeue(ids), "take them")


async def db_upgrade(settings: Any) -> None:
    from qopi_bot.migrate import upgrade
    from qopi_bot.store import Store

    store = Store.from_url(settings.db_url)
    try:
        typer.echo(await upgrade(store))
    finally:
        await store.close()
