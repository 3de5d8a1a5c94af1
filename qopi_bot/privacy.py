"""Keep patient data out of logs and staff channels.

Practices sometimes paste chart details by mistake. `scrub` replaces anything shaped like a
medical record number, date of birth, SSN, phone number or e-mail address; it runs on every
logged field and on practice text shown to staff, as a second line of defence behind the
rule that message bodies are never logged at all."""

from __future__ import annotations

import re

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("[ssn]", re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b")),
    ("[mrn]", re.compile(r"\b(?:mrn|medical record(?: number| no\.?| #)?|record #|chart (?:number|no\.?|#)|patient id|pt id)\s*[:#]?\s*[A-Z0-9-]{4,}", re.I)),
    ("[dob]", re.compile(r"\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|born(?: on)?)\s*[:#]?\s*(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4}|\d{1,2} [A-Za-z]{3,9} \d{4})", re.I)),
    ("[email]", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("[phone]", re.compile(r"(?<!\d)(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)")),
    ("[date]", re.compile(r"\b\d{1,2}/\d{1,2}/(?:19|20)?\d{2}\b")),
]

_PHI_HINT = re.compile(r"\b(mrn|dob|d\.o\.b|date of birth|medical record|patient id|ssn|social security)\b|\b\d{3}-\d{2}-\d{4}\b", re.I)


def scrub(text: str) -> str:
    for label, pattern in _PATTERNS:
        text = pattern.sub(label, text)
    return text


def looks_like_phi(text: str) -> bool:
    return bool(_PHI_HINT.search(text))
