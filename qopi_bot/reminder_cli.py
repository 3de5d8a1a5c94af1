"""`qopi-bot reminders list|run` (contract section 10)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer

from qopi_bot.runtime import open_runtime


async def list_reminders(settings: Any, status: str | None, as_json: bool) -> None:
    from qopi_bot.reminder_store import ReminderStore

    async with open_runtime(settings) as rt:
        found = await ReminderStore(rt.store).list(status=status)
    if as_json:
        typer.echo(json.dumps([r.summary_json() for r in found], ensure_ascii=False))
        return
    if not found:
        typer.echo("no reminders" + (f" with status {status}" if status else ""))
    for r in found:
        typer.echo(reminder_line(r.summary_json()))


def reminder_line(r: dict[str, Any]) -> str:
    due = r["due"] or "when the close date is published"
    what = f"{r['days_before']} days before the last day" if r["kind"] == "before_close" else "close date published"
    score = f"{r['score']:g}% " if r.get("score") is not None else ""
    return f"#{r['id']} {r['channel']:<5} {r['status']:<9} due {due}  {what}  ({score}{r['round']})  {r['conversation']}"


async def run_reminders(settings: Any, today: dt.date, rounds: str | None) -> None:
    from qopi_bot.reminder_runner import ReminderRunner

    async with open_runtime(settings, rounds) as rt:
        sent = await ReminderRunner(rt.store, settings, lambda: rt.kb).run_once(today)
    typer.echo(f"sent {sent} reminder{'s' if sent != 1 else ''} due on or before {today.isoformat()} "
               "(handed to the outbox; the running processes deliver them)")
