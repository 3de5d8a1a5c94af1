"""Who may speak for QCP staff by email (contract section 8).

A staff answer is relayed to a practice only when it proves it answers the case mail: the
case mail's Message-ID carries an unguessable token (`<qopi-case-42-TOKEN@help.domain>`),
and a genuine reply names it in In-Reply-To/References. A staff From: header alone (trivial
to forge), a case id in the subject alone, or a made-up id never relay -- case numbers are
sequential and every practice sees its own, so they prove nothing.

As an optional second lock (QOPI_STAFF_REQUIRE_DMARC) the receiving server's
Authentication-Results must show DMARC (or aligned DKIM) passing for the staff domain.
This module decides; it never sends, stores or logs."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel

from qopi_bot_handlers.email.parse import ParsedMail
from qopi_bot.records import CaseRecord, parse_case_label

_CASE_MAIL_ID = re.compile(r"^<qopi-case-(\d{1,9})-([A-Za-z0-9_-]{20,64})@[^<>@\s]+>$")
_SUBJECT_TAG = re.compile(r"\[(QCP-\d{1,9})\]", re.I)

Verdict = Literal["proven", "refused", "not_a_case_reply"]
Reason = Literal["no_token", "wrong_token", "unknown_case", "not_authenticated"]


class StaffCheck(BaseModel):
    verdict: Verdict
    case: int | None = None
    reason: Reason | None = None  # why a reply was refused: a code for logs and the case trail


def new_case_mail_id(case_number: int, help_address: str) -> str:
    """The case mail's Message-ID: the case number (to find it) plus 32 random bytes (to
    prove a reply has seen the mail). Generated once per case and stored with it."""
    domain = help_address.rpartition("@")[2] or "localhost"
    return f"<qopi-case-{case_number}-{secrets.token_urlsafe(32)}@{domain}>"


def _same(a: str, b: str) -> bool:
    # Constant time: how much of a guessed id matched must not show in how long we take.
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


async def check_staff_reply(mail: ParsedMail, get_case: Callable[[int], Awaitable[CaseRecord | None]], *,
                            require_authentication: bool, authserv_id: str = "") -> StaffCheck:
    """For mail from a staff address: does it prove it answers a case mail?"""
    claimed: int | None = None
    wrong = False
    for ref in reversed(mail.thread_ids):  # the newest reference first
        m = _CASE_MAIL_ID.match(ref)
        if not m:
            continue
        number = int(m.group(1))
        claimed = claimed if claimed is not None else number
        case = await get_case(number)
        if case is not None and case.staff_email_message_id and _same(ref, case.staff_email_message_id):
            if require_authentication and not authenticated(mail, authserv_id):
                return StaffCheck(verdict="refused", case=number, reason="not_authenticated")
            return StaffCheck(verdict="proven", case=number)
        wrong = True
    if claimed is None and (tag := _SUBJECT_TAG.search(mail.subject)):
        claimed = parse_case_label(tag.group(1))
    if claimed is None:
        return StaffCheck(verdict="not_a_case_reply")
    exists = await get_case(claimed) is not None
    reason: Reason = "unknown_case" if not exists else ("wrong_token" if wrong else "no_token")
    return StaffCheck(verdict="refused", case=claimed if exists else None, reason=reason)


# ---------------------------------------------------------------- Authentication-Results
def _strip_comments(value: str) -> str:
    out, depth, quoted = [], 0, False
    for ch in value:
        if ch == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
            continue
        elif not quoted and ch == ")" and depth:
            depth -= 1
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


class AuthResult(BaseModel):
    method: str
    result: str
    props: dict[str, str]


def parse_authentication_results(value: str) -> tuple[str, list[AuthResult]]:
    """RFC 8601: `authserv-id [version]; method=result ptype.prop=value ...; ...`.
    Returns the authserv-id and the results; anything unreadable is skipped."""
    parts = [p.strip() for p in _strip_comments(value).split(";")]
    head = parts[0].split() if parts else []
    authserv = head[0].lower() if head else ""
    results: list[AuthResult] = []
    for part in parts[1:]:
        tokens = part.split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        props: dict[str, str] = {}
        for token in tokens[1:]:
            key, eq, val = token.partition("=")
            if eq and "." in key:
                props[key.lower()] = val.strip('"').lower()
        results.append(AuthResult(method=method.split("/")[0].lower(), result=result.lower(), props=props))
    return authserv, results


def authenticated(mail: ParsedMail, authserv_id: str = "") -> bool:
    """DMARC pass for the From: domain, or a DKIM pass signed by that very domain, as
    stamped by our receiving server. Which header is ours: the one whose authserv-id is
    QOPI_AUTHSERV_ID when that is set, else only the topmost one (the last server to add
    one is the nearest; a sender can put any header below it)."""
    domain = (mail.from_address or "").rpartition("@")[2].lower()
    if not domain:
        return False
    fields = mail.auth_results
    for value in (fields if authserv_id else fields[:1]):
        authserv, results = parse_authentication_results(value)
        if authserv_id and authserv != authserv_id.lower():
            continue
        for r in results:
            if r.result != "pass":
                continue
            if r.method == "dmarc" and r.props.get("header.from") == domain:
                return True
            if r.method == "dkim" and (r.props.get("header.d") == domain
                                       or r.props.get("header.i", "").rpartition("@")[2] == domain):
                return True
    return False
