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
