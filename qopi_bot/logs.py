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


def _scrub_event(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if key in _BODY_KEYS:
            event[key] = f"<{len(value) if hasattr(value, '__len__') else '?'} chars withheld>"
        elif isinstance(value, str):
            event[key] = scrub(value)
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
