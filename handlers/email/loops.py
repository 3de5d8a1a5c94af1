"""Never answer automated mail (RFC 3834, contract section 5).

An auto-reply to an out-of-office, a bounce or a mailing list is how mail loops start, and
every extra message to a practice costs trust. `automated_reason` names the first signal
found (for the log) or returns None for mail a person wrote. The hourly per-sender cap in
the worker is the backstop for whatever slips through."""

from __future__ import annotations

from email.utils import parseaddr

from qopi_bot_handlers.email.parse import ParsedMail

_PRECEDENCE = {"bulk", "list", "junk", "auto_reply"}
_ROBOT_LOCALPARTS = {"mailer-daemon", "postmaster", "no-reply", "noreply", "do-not-reply", "donotreply"}


def _local(address: str | None) -> str:
    return parseaddr(address or "")[1].rpartition("@")[0].strip().lower()


def _same(a: str | None, b: str) -> bool:
    return bool(a) and a.strip().strip("<>").lower() == b.strip().lower()


def automated_reason(mail: ParsedMail, envelope_from: str, help_address: str) -> str | None:
    h = mail.loop_headers
    # Our own address first: a copy of our reply bounced back, a forward from our mailbox,
    # or a spoof -- answering any of them is answering ourselves.
    if any(_same(a, help_address) for a in (mail.from_address, mail.reply_to_address, envelope_from)):
        return "from_help_address"
    if help_address.lower() in h.get("x-loop", "").lower():
        return "x_loop"
    auto = h.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if h.get("precedence", "").strip().lower() in _PRECEDENCE:
        return "precedence"
    if "list-id" in h or "list-unsubscribe" in h:
        return "mailing_list"
    for name in ("x-autoreply", "x-autorespond"):
        if name in h and h[name].strip().lower() not in ("no", "false", "0"):
            return name.replace("-", "_")
    # RFC 5321: an empty reverse-path means "do not answer" (bounces, notifications).
    if envelope_from.strip() in ("", "<>") or h.get("return-path", "").strip() == "<>":
        return "empty_return_path"
    for address in (mail.from_address, envelope_from, mail.reply_to_address, h.get("sender")):
        local = _local(address)
        if local and (local in _ROBOT_LOCALPARTS or local.startswith(("no-reply", "noreply"))):
            return "robot_sender"
    if mail.has_report_part or mail.content_type == "multipart/report":
        return "delivery_report"
    return None
