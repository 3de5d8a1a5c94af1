"""Structured logs (structlog): ids, intents, outcomes, timings -- never message bodies.

The scrubber processor is the second line of defence: whatever a call site passes, every
string field is cleaned of anything shaped like a patient identifier before it is written."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from qopi_bot.privacy import scrub

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
    # Library loggers (aiosmtpd, slack_bolt, sqlalchemy) go to stderr without bodies.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
