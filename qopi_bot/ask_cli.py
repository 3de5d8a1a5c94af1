"""`qopi-bot ask`: the part of the command line that must start fast (contract.md section 2).

Nothing here imports typer, the channels, a web framework or SQLAlchemy; the database is opened
only when a question needs it (`--conversation` threads, staff cases). qopi_bot.cli (typer) uses
the same functions, so `ask` behaves the same whichever way it was started."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import uuid
from typing import Any


def fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"qopi-bot: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def parse_today(value: str | None) -> dt.date:
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"--today must be a date like 2026-03-01, not {value!r}")
    raise AssertionError


def error_json(message: str) -> dict[str, Any]:
    return {"intent": None, "outcome": "error", "verdict": None, "rules": [], "facts": {}, "missing": [],
            "case_id": None, "text": message}


def load_settings(structured_logs: bool = False) -> Any:
    from qopi_bot.settings import get_settings

    settings = get_settings()
    if structured_logs:  # long-running processes; `ask` does not log, and starts faster without it
        from qopi_bot.logs import configure_logging

        configure_logging(settings.log_format)
    return settings


def run(coro: Any) -> Any:
    """Run a coroutine; turn knowledge and database problems into one clear line."""
    from qopi_bot.knowledge import KnowledgeError

    try:
        return asyncio.run(coro)
    except KnowledgeError as exc:
        fail(f"knowledge error: {exc}")
    except Exception as exc:
        database_failure(exc)
        raise


def database_failure(exc: BaseException) -> None:
    """One clear line for database trouble; anything else is a bug and keeps its traceback."""
    if "sqlalchemy" not in sys.modules and not isinstance(exc, OSError):
        return
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from qopi_bot.migrate import SchemaNotReady

    if isinstance(exc, SchemaNotReady):
        fail(str(exc))
    if isinstance(exc, (OperationalError, OSError)):
        fail(f"cannot reach the database ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
             "Check DATABASE_URL and that the server is running.", code=1)
    if isinstance(exc, SQLAlchemyError):
        fail(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", code=1)


def ask(question: str | None, as_json: bool, today: str | None, rounds: str | None, conversation: str | None) -> None:
    from qopi_bot.settings import from_environment

    settings = from_environment()  # the same values as get_settings(), without importing pydantic-settings
    day = parse_today(today)
    if question is not None:
        run(_ask_one(settings, question, day, rounds, conversation, as_json))
    else:
        run(_ask_stream(settings, day, rounds, conversation, as_json))


def _print_answer(answer: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(answer.contract_json(), ensure_ascii=False) + "\n")
    else:
        line = answer.text
        if answer.rules:
            line += f"  [rules: {', '.join(answer.rules)}]"
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _ask_one(settings: Any, question: str, day: dt.date, rounds: str | None, conversation: str | None,
                   as_json: bool) -> None:
    from qopi_bot.records import IncomingMessage
    from qopi_bot.runtime import open_cli_runtime

    async with open_cli_runtime(settings, rounds) as rt:
        key = f"cli:{conversation}" if conversation else f"cli:once:{uuid.uuid4().hex}"
        answer = await rt.dialogue.handle(IncomingMessage(conversation_key=key, channel="cli", text=question, today=day))
        _print_answer(answer, as_json)


async def _ask_stream(settings: Any, day: dt.date, rounds: str | None, conversation: str | None, as_json: bool) -> None:
    from pydantic import ValidationError

    from qopi_bot.records import IncomingMessage
    from qopi_bot.runtime import open_cli_runtime
    from qopi_bot.streamline import StreamLine

    run_id = uuid.uuid4().hex[:12]  # conversation ids in a stream are scoped to this run
    async with open_cli_runtime(settings, rounds) as rt:
        for number, raw in enumerate(sys.stdin, start=1):
            line = raw.rstrip("\r\n")
            try:
                if line.lstrip().startswith("{"):
                    item = StreamLine.model_validate_json(line)
                    key = f"cli:stream:{run_id}:{item.conversation}" if item.conversation else f"cli:once:{uuid.uuid4().hex}"
                    msg = IncomingMessage(conversation_key=key, channel="cli", text=item.text,
                                          today=item.today or day, user=item.user)
                else:
                    key = f"cli:{conversation}" if conversation else f"cli:once:{uuid.uuid4().hex}"
                    msg = IncomingMessage(conversation_key=key, channel="cli", text=line, today=day)
                answer = await rt.dialogue.handle(msg)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "line"
                _emit_error(f"line {number}: {where}: {err['msg']}", as_json)
                continue
            except Exception as exc:  # one bad line must not stop the stream
                _emit_error(f"line {number}: could not be handled ({type(exc).__name__})", as_json)
                continue
            _print_answer(answer, as_json)


def _emit_error(message: str, as_json: bool) -> None:
    sys.stdout.write((json.dumps(error_json(message)) if as_json else f"error: {message}") + "\n")
    sys.stdout.flush()
