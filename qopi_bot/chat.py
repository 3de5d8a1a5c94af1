"""`qopi-bot chat`: an interactive, multi-turn conversation in the terminal."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from rich.console import Console
from rich.panel import Panel

from qopi_bot.models import ConversationState
from qopi_bot.models import Answer
from qopi_bot.records import IncomingMessage
from qopi_bot.runtime import open_runtime

HELP = ("Ask anything about QOPI Certification. Commands: /why shows the rules behind the last answer, "
        "/facts what I know so far, /new starts over, /today YYYY-MM-DD changes the date, /quit leaves.")


def _render(console: Console, answer: Answer) -> None:
    style = {"answered": "green", "needs_info": "yellow", "escalated": "magenta", "error": "red"}.get(answer.outcome.value, "white")
    title = answer.outcome.value.replace("_", " ")
    if answer.verdict:
        title += f" · {answer.verdict.value.replace('_', ' ')}"
    body = answer.text
    if answer.question is not None:
        body += "\n\n[bold]I need to know:[/bold] " + answer.question.value.replace("_", " ")
    if answer.rules:
        body += f"\n[dim]rules: {', '.join(answer.rules)}[/dim]"
    console.print(Panel(body, title=title, border_style=style, expand=False))


async def run_chat(settings: Any, today: dt.date, rounds: str | None, conversation: str | None) -> None:
    console = Console(highlight=False)
    key = f"cli:{conversation or uuid.uuid4().hex}"
    console.print(f"[bold]qopi-bot[/bold] — QOPI Certification questions. {HELP}")
    last: Answer | None = None
    async with open_runtime(settings, rounds) as rt:
        while True:
            try:
                text = console.input("[bold cyan]you>[/bold cyan] ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            command = text.strip().lower()
            if command in ("/quit", "/exit", "quit", "exit"):
                return
            if command == "/help":
                console.print(HELP)
                continue
            if command == "/new":
                key = f"cli:{uuid.uuid4().hex}"
                console.print("[dim]new conversation[/dim]")
                continue
            if command.startswith("/today"):
                try:
                    today = dt.date.fromisoformat(command.split(maxsplit=1)[1])
                    console.print(f"[dim]answering as of {today.isoformat()}[/dim]")
                except (IndexError, ValueError):
                    console.print("[red]usage: /today YYYY-MM-DD[/red]")
                continue
            if command == "/why":
                if last is None or not last.trace:
                    console.print("[dim]no rule trace for the last answer[/dim]")
                else:
                    for step in last.trace:
                        console.print(f"  {step.rule_id}: {step.check.value} — {step.note}")
                        rule = rt.kb.rules.get(step.rule_id)
                        if rule:
                            console.print(f"    [dim]“{rule.source}”[/dim]")
                continue
            if command == "/facts":
                state = await rt.store.load_state(key) or ConversationState()
                known = {k: v for k, v in state.facts.model_dump(mode="json").items() if v not in (None, [])}
                console.print(known or "[dim]nothing yet[/dim]")
                continue
            last = await rt.dialogue.handle(IncomingMessage(conversation_key=key, channel="cli", text=text, today=today))
            _render(console, last)
