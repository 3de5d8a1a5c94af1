"""Patient identifiers never reach logs; staff views show what the practice wrote, scrubbed."""

from __future__ import annotations

import io
import json
import sys

from qopi_bot.logs import configure_logging, get_logger
from qopi_bot.privacy import looks_like_phi, scrub

PHI = "Patient Jane Roe DOB 03/14/1958, MRN 00482913, SSN 123-45-6789, call 555-867-5309 or jane.roe@example.org"


def test_scrub_removes_identifiers() -> None:
    cleaned = scrub(PHI)
    for secret in ("03/14/1958", "00482913", "123-45-6789", "555-867-5309", "jane.roe@example.org"):
        assert secret not in cleaned
    assert "[dob]" in cleaned and "[mrn]" in cleaned and "[ssn]" in cleaned
    assert looks_like_phi(PHI) and not looks_like_phi("We scored 81% in Fall 2025")


def test_logs_never_carry_bodies_or_identifiers(monkeypatch: object) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)  # type: ignore[attr-defined]
    configure_logging("json")
    log = get_logger("test")
    log.info("message.received", text=PHI, sender_note=f"from {PHI}", case="QCP-0001")
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["case"] == "QCP-0001" and line["event"] == "message.received"
    dump = json.dumps(line)
    for secret in ("Jane Roe DOB", "03/14/1958", "00482913", "123-45-6789", "555-867-5309", "jane.roe@example.org"):
        assert secret not in dump
    assert "withheld" in line["text"]


def test_library_log_lines_are_json_and_scrubbed_too(monkeypatch: object) -> None:
    """aiohttp, aiosmtpd, asyncio, SQLAlchemy... log through the stdlib: in json format their
    lines must be JSON objects with an event name (tracebacks inside), scrubbed like ours."""
    import logging

    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)  # type: ignore[attr-defined]
    configure_logging("json")
    try:
        logging.getLogger("aiohttp.server").error("Error handling request: %s", PHI)
        try:
            raise ValueError(f"bad input {PHI}")
        except ValueError:
            logging.getLogger("asyncio").exception("Task exception was never retrieved")
        logging.getLogger("sqlalchemy.pool").info("below the level: not written")
    finally:
        for handler in [h for h in logging.getLogger().handlers if h.get_name() == "qopi-bot"]:
            logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(r["logger"], r["level"]) for r in lines] == [("aiohttp.server", "error"), ("asyncio", "error")]
    assert lines[1]["event"] == "Task exception was never retrieved" and "ValueError" in lines[1]["exception"]
    dump = json.dumps(lines)
    for secret in ("03/14/1958", "00482913", "123-45-6789", "555-867-5309", "jane.roe@example.org"):
        assert secret not in dump


def test_nested_values_are_scrubbed_too(monkeypatch: object) -> None:
    """A call site that logs a whole structure (a case's facts, an error's details) must not
    carry a chart number or a date of birth out in a nested dict or list."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)  # type: ignore[attr-defined]
    configure_logging("json")
    get_logger("test").warning("case.details", case="QCP-0007", details={
        "site": "downtown", "count": 3, "ok": True,
        "notes": ["chart number 77120934 was excluded", {"who": "pt", "dob": "DOB: 1962-07-04", "text": "raw body"}],
        "pairs": ("date of birth 04/07/1962", None),
    })
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    dump = json.dumps(line)
    for secret in ("77120934", "1962-07-04", "04/07/1962", "raw body"):
        assert secret not in dump
    details = line["details"]
    assert details["site"] == "downtown" and details["count"] == 3 and details["ok"] is True
    assert "[mrn]" in details["notes"][0] and "[dob]" in details["notes"][1]["dob"]
    assert "withheld" in details["notes"][1]["text"] and "[dob]" in details["pairs"][0]
