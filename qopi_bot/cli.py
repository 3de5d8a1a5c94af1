"""qopi-bot command line (contract.md section 2). Imports stay lazy so `ask` starts fast."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from qopi_bot import ask_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="qopi-bot: answers QOPI Certification questions from a deterministic rules core.")
knowledge_app = typer.Typer(no_args_is_help=True, help="Check the knowledge base staff maintain.")
cases_app = typer.Typer(no_args_is_help=True, help="Staff cases: list, show, reply, resolve.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
outbox_app = typer.Typer(no_args_is_help=True, help="Outgoing replies waiting, sent or failed.")
inbox_app = typer.Typer(no_args_is_help=True, help="Incoming Slack events and mail: waiting, done or failed.")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(cases_app, name="cases")
app.add_typer(db_app, name="db")
app.add_typer(outbox_app, name="outbox")
reminders_app = typer.Typer(no_args_is_help=True, help="Reminders before a score expires: list, send what is due.")
app.add_typer(inbox_app, name="inbox")
app.add_typer(reminders_app, name="reminders")


console_app = typer.Typer(no_args_is_help=True, help="The staff console in the web process.")
app.add_typer(console_app, name="console")

TodayOpt = Annotated[str | None, typer.Option("--today", help="Date to answer for, YYYY-MM-DD (default: today).")]
RoundsOpt = Annotated[str | None, typer.Option("--rounds", help="Rounds calendar YAML replacing knowledge/rounds.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per answer (contract section 2).")]


# The helpers `ask` shares with the fast entry point (qopi_bot.main) live in a typer-free module.
_fail = ask_cli.fail
_parse_today = ask_cli.parse_today
_settings = ask_cli.load_settings
_run = ask_cli.run


# ------------------------------------------------------------------ ask
@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question. Omit to read one question per line from stdin.")] = None,
    as_json: JsonOpt = False,
    today: TodayOpt = None,
    rounds: RoundsOpt = None,
    conversation: Annotated[str | None, typer.Option("--conversation", help="Continue this conversation id.")] = None,
) -> None:
    """Answer a question, or a stream of questions on standard input (JSON lines or plain text)."""
    ask_cli.ask(question, as_json, today, rounds, conversation)


# ------------------------------------------------------------------ chat
@app.command()
def chat(
    today: TodayOpt = None,
    rounds: RoundsOpt = None,
    conversation: Annotated[str | None, typer.Option("--conversation", help="Resume this conversation id.")] = None,
) -> None:
    """Talk to the bot, several turns in one conversation. Type /help for commands."""
    from qopi_bot.chat import run_chat

    settings = _settings()
    _run(run_chat(settings, _parse_today(today), rounds, conversation))


# ------------------------------------------------------------------ knowledge
@knowledge_app.command("check")
def knowledge_check(rounds: RoundsOpt = None) -> None:
    """Validate knowledge/*.yaml (and a --rounds file). Non-zero exit with the file and entry on error."""
    from qopi_bot.knowledge import KnowledgeError
    from qopi_bot.runtime import load_kb
    from qopi_bot.settings import get_settings

    try:
        kb = load_kb(get_settings(), rounds)
    except KnowledgeError as exc:
        _fail(f"knowledge check failed: {exc}", code=1)
        return
    from qopi_bot.knowledge import knowledge_dir
    from qopi_bot.understanding.model_store import store_model

    published = sum(1 for r in kb.rounds if r.closes)
    from qopi_bot.understanding import conditions, statements

    typer.echo(store_model(kb, knowledge_dir(get_settings().knowledge_dir)))
    typer.echo(statements.store(kb, knowledge_dir(get_settings().knowledge_dir)))
    typer.echo(conditions.store(kb, knowledge_dir(get_settings().knowledge_dir)))
    typer.echo(f"knowledge OK: {len(kb.rules)} rules with verbatim sources, {len(kb.rounds)} rounds "
               f"({published} with a published close date), {len(kb.measures)} measures, "
               f"{kb.standard_count} standards, {len(kb.modules)} modules; contact {kb.contacts.email} / {kb.contacts.phone}")


# ------------------------------------------------------------------ cases
@cases_app.command("list")
def cases_list(
    status: Annotated[str | None, typer.Option("--status", help="open, claimed or resolved")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List staff cases."""
    if status and status not in ("open", "claimed", "resolved"):
        _fail("--status must be open, claimed or resolved")
    from qopi_bot.staff_cli import list_cases

    _run(list_cases(_settings(), status, as_json))


@cases_app.command("show")
def cases_show(case_id: str, as_json: JsonOpt = False) -> None:
    """Show one case: question, facts, decision so far, transcript."""
    from qopi_bot.staff_cli import show_case

    _run(show_case(_settings(), case_id, as_json))


@cases_app.command("reply")
def cases_reply(case_id: str, text: str,
                who: Annotated[str, typer.Option("--as", help="Staff name shown on the case.")] = "staff (cli)") -> None:
    """Send a staff reply to the practice, in the thread where it asked."""
    from qopi_bot.staff_cli import reply_case

    _run(reply_case(_settings(), case_id, text, who))


@cases_app.command("resolve")
def cases_resolve(case_id: str,
                  who: Annotated[str, typer.Option("--as", help="Staff name shown on the case.")] = "staff (cli)") -> None:
    """Mark a case resolved."""
    from qopi_bot.staff_cli import resolve_case

    _run(resolve_case(_settings(), case_id, who))


# ------------------------------------------------------------------ db / outbox
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema at DATABASE_URL."""
    from qopi_bot.staff_cli import db_upgrade as run_upgrade

    _run(run_upgrade(_settings()))


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option("--status", help="pending, leased, sent or failed")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show outgoing messages; failed ones stay here until someone looks."""
    from qopi_bot.staff_cli import list_outbox

    _run(list_outbox(_settings(), status, as_json))


@outbox_app.command("retry")
def outbox_retry(ids: Annotated[list[int], typer.Argument(help="Outbox item numbers (from `outbox list`).")]) -> None:
    """Send failed items again once the cause (relay, credentials, channel) is fixed."""
    from qopi_bot.staff_cli import retry_outbox

    _run(retry_outbox(_settings(), ids))


@inbox_app.command("list")
def inbox_list(
    status: Annotated[str | None, typer.Option("--status", help="pending, leased, done, ignored or failed")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List incoming items (never their text); failed ones are bugs the worker gave up on."""
    from qopi_bot.staff_cli import list_inbox

    _run(list_inbox(_settings(), status, as_json))


@inbox_app.command("retry")
def inbox_retry(ids: Annotated[list[int], typer.Argument(help="Inbox item numbers (from `inbox list`).")]) -> None:
    """Process failed items again once the cause is fixed (only `failed` items are touched)."""
    from qopi_bot.staff_cli import retry_inbox

    _run(retry_inbox(_settings(), ids))


# ------------------------------------------------------------------ reminders
@reminders_app.command("list")
def reminders_list(
    status: Annotated[str | None, typer.Option("--status", help="pending, sent or cancelled")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show reminders: conversation, channel, due date (none while a close date is unpublished), status."""
    if status and status not in ("pending", "sent", "cancelled"):
        _fail("--status must be pending, sent or cancelled")
    from qopi_bot.reminder_cli import list_reminders

    _run(list_reminders(_settings(), status, as_json))


@reminders_app.command("run")
def reminders_run(today: TodayOpt = None, rounds: RoundsOpt = None) -> None:
    """Send every reminder due on or before --today now, and print how many."""
    from qopi_bot.reminder_cli import run_reminders

    _run(run_reminders(_settings(structured_logs=True), _parse_today(today), rounds))  # logs go to stderr


# ------------------------------------------------------------------ answer log / console
@app.command()
def report(
    since: Annotated[str | None, typer.Option("--since", help="Only answers from this day on (YYYY-MM-DD, UTC).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What was asked and answered: by intent, outcome and verdict; escalations; not understood; cases."""
    from qopi_bot.console_cli import print_report

    day = None
    if since:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            _fail(f"--since must be a date like 2026-03-01, not {since!r}")
    _run(print_report(_settings(), day, as_json))


@console_app.command("link")
def console_link(who: Annotated[str, typer.Option("--as", help="Your Slack user id (one of QOPI_STAFF_USERS).")]) -> None:
    """Print a one-time sign-in link to the staff console (valid 15 minutes)."""
    from qopi_bot.console_cli import print_link

    _run(print_link(_settings(), who.strip()))


# ------------------------------------------------------------------ processes
@app.command()
def serve(socket_mode: Annotated[bool, typer.Option("--socket-mode", help="Use Slack Socket Mode (needs SLACK_APP_TOKEN, no signing secret). Also chosen when SLACK_APP_TOKEN is set and SLACK_SIGNING_SECRET is not.")] = False) -> None:
    """Run the Slack web process (POST /slack/events, GET /healthz on $PORT)."""
    settings = _settings(structured_logs=True)
    from qopi_bot_handlers.slack.app import run_web

    run_web(settings, socket_mode=socket_mode)


@app.command()
def worker() -> None:
    """Run the email worker (SMTP in on QOPI_SMTP_LISTEN, replies via QOPI_SMTP_RELAY)."""
    settings = _settings(structured_logs=True)
    from qopi_bot_handlers.email.worker import run_worker

    run_worker(settings)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
