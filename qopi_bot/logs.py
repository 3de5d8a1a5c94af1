"""Structured logs (structlog): ids, intents, outcomes, timings -- never message bodies.

The scrubber processor is the second line of defence: whatever a call site passes, every
string field is cleaned of anything shaped like a patient identifier before it is written."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from qopi_bot.privacy import scrub

_HANDLER = "qopi-bot"
_BODY_KEYS = {"text", "body", "message_text", "payload", "raw", "content", "question"}


_MAX_DEPTH = 8  # deeper than any field we log; past it a value is withheld rather than walked


def _withheld(value: Any) -> str:
    return f"<{len(value) if hasattr(value, '__len__') else '?'} chars withheld>"


def _scrub_value(value: Any, depth: int = 0) -> Any:
    """Strings scrubbed; dicts, lists, tuples and sets walked (a call site may log a whole
    structure, e.g. the facts of a case or an error's details), body-like keys withheld at
    every level. Other values (numbers, booleans, None) cannot carry text and pass as they are."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (bytes, bytearray)):
        return _withheld(value)  # raw payloads are bodies
    if depth >= _MAX_DEPTH and isinstance(value, (dict, list, tuple, set, frozenset)):
        return "<nested value withheld>"
    if isinstance(value, dict):
        return {k: (_withheld(v) if isinstance(k, str) and k in _BODY_KEYS else _scrub_value(v, depth + 1))
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub_value(v, depth + 1) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return scrub(str(value))  # an object's repr can quote input too


def _scrub_event(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if key in _BODY_KEYS:
            event[key] = _withheld(value)
        elif key in ("exc_info", "stack_info"):
            continue  # rendered into `exception` by format_exc_info, which runs first
        else:
            event[key] = _scrub_value(value)
    return event


def configure_logging(log_format: str = "console", level: int = logging.INFO) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library loggers (aiohttp, aiosmtpd, asyncio, sqlalchemy, slack_bolt), warnings and up:
    # rendered like our own lines (one JSON object per line in json format, tracebacks
    # included) and through the same scrubber, since their messages can quote input.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.processors.TimeStamper(fmt="iso", utc=True)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
                    _scrub_event, renderer]))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # configured twice: replace ours
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
