"""Block Kit rendering: answers for practices, case messages for staff.

Pure functions from project models to (fallback text, blocks). The fallback `text` is the
whole answer in plain words: Slack shows it in notifications and to clients without blocks.
Slack limits: a section's text is at most 3000 characters and a message at most 50 blocks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from qopi_bot.cases import CaseSummary
from qopi_bot.models import Answer, Outcome, Verdict
from qopi_bot.wording import QUESTIONS, long_date

Blocks = list[dict[str, Any]]
SECTION_LIMIT = 3000

VERDICT_LINE: dict[Verdict, str] = {
    Verdict.ELIGIBLE: ":white_check_mark: *Eligible to apply*",
    Verdict.ELIGIBLE_WITH_CONDITIONS: ":large_yellow_circle: *Eligible, with conditions*",
    Verdict.NOT_ELIGIBLE: ":x: *Not eligible yet*",
    Verdict.NEEDS_STAFF_REVIEW: ":busts_in_silhouette: *Needs a decision by QCP staff*",
}

OUTCOME_LINE: dict[Outcome, str] = {
    Outcome.NEEDS_INFO: ":grey_question: *One thing I need to know first*",
    Outcome.ESCALATED: ":busts_in_silhouette: *Passed to QCP staff*",
    Outcome.OUT_OF_SCOPE: ":information_source: *Outside what I can answer*",
    Outcome.ERROR: ":warning: *I could not handle that message*",
}

FACT_LABELS: dict[str, str] = {
    "score": "Score",
    "completed_round": "Score from",
    "valid_until_round": "Valid until the close of",
    "valid_until": "Last day",
    "can_apply": "Can apply today",
}

_NEXT = re.compile(r"(?:^|(?<=\s))(Next step:|Then:)")
_USER_ID = re.compile(r"(?<![<@\w])([UW][A-Z0-9]{5,})\b")


def escape(text: str) -> str:
    """Slack mrkdwn needs &, < and > escaped; everything else shows as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(who: str | None) -> str:
    """Slack user ids render as @name; anything else (a CLI name) as typed."""
    if not who:
        return ""
    return f"<@{who}>" if _USER_ID.fullmatch(who) else escape(who)


def mention_ids(text: str) -> str:
    return _USER_ID.sub(r"<@\1>", text)


def _cut(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text)}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text)}]}


def _headline(answer: Answer) -> str | None:
    if answer.verdict is not None:
        return VERDICT_LINE[answer.verdict]
    if answer.outcome in OUTCOME_LINE:
        line = OUTCOME_LINE[answer.outcome]
        return f"{line} ({answer.case_id})" if answer.outcome is Outcome.ESCALATED and answer.case_id else line
    return None


def _split(answer: Answer) -> tuple[str, str | None, str | None, str | None]:
    """(reason, next step, follow-up question, what the bot read) out of the answer's text."""
    text, question, seen = answer.text.strip(), None, None
    if answer.question is not None:
        asked = QUESTIONS.get(answer.question)
        if asked and asked in text:
            text, question = text.replace(asked, "").strip(), asked
    kept = []
    for line in text.splitlines():
        if line.startswith("I read: "):
            seen = line  # shown small, under the answer: a misreading is visible at a glance
        else:
            kept.append(line)
    text = "\n".join(kept).strip()
    step = None
    found = _NEXT.search(text)
    if found:
        end = text.find("\n", found.start())
        end = len(text) if end < 0 else end
        step = text[found.start():end].strip()
        text = (text[: found.start()] + text[end:]).strip()
    return text, step, question, seen


def _dates(facts: dict[str, object]) -> list[dict[str, Any]]:
    fields = []
    for key, label in FACT_LABELS.items():
        if key not in facts:
            continue
        value = facts[key]
        if key == "valid_until" and value is None:
            shown = "not published yet"
        elif key == "can_apply":
            shown = {True: "yes", False: "no"}.get(value, "unknown")  # type: ignore[arg-type]
        elif key == "score" and isinstance(value, int | float):
            shown = f"{value:g}%"
        elif key == "valid_until" and isinstance(value, str | dt.date):
            shown = long_date(dt.date.fromisoformat(value) if isinstance(value, str) else value)
        else:
            shown = str(value)
        fields.append({"type": "mrkdwn", "text": f"*{label}:*\n{escape(shown)}"})
    return fields


def answer_message(answer: Answer) -> tuple[str, Blocks]:
    """An answer as (fallback text, blocks): verdict, reason, dates, next step, question, rules."""
    reason, step, question, seen = _split(answer)
    blocks: Blocks = []
    headline = _headline(answer)
    if headline:
        blocks.append(section(headline))
    if reason:
        blocks.append(section(escape(reason)))
    fields = _dates(answer.facts)
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    if step:
        blocks.append(section(f":arrow_right: {escape(step)}"))
    if question:
        # The one thing the bot is waiting for, set apart so it is not missed.
        blocks.append({"type": "divider"})
        blocks.append(section(f":speech_balloon: *Question for you:* {escape(question)}\n_Just reply here; no need to mention me._"))
    notes = []
    if seen:
        notes.append(escape(seen))
    if answer.rules:
        notes.append("Rules: " + " · ".join(f"`{r}`" for r in answer.rules))
    if answer.case_id:
        notes.append(f"Case {answer.case_id}")
    if notes:
        blocks.append(context("   |   ".join(notes)))
    fallback = answer.text + (f" [rules: {', '.join(answer.rules)}]" if answer.rules else "")
    return _cut(fallback, 3900), blocks


def text_message(text: str) -> tuple[str, Blocks]:
    return _cut(text, 3900), [section(escape(text))]


def relay_message(text: str) -> tuple[str, Blocks]:
    """A staff answer relayed to the practice (the text already names the case)."""
    head, _, rest = text.partition("\n")
    blocks = [section(f":busts_in_silhouette: *{escape(head)}*")]
    if rest.strip():
        blocks.append(section(escape(rest.strip())))
    return _cut(text, 3900), blocks


STATUS_LINE = {"open": ":red_circle: Open", "claimed": ":large_yellow_circle: Claimed", "resolved": ":white_check_mark: Resolved"}


def staff_case_message(s: CaseSummary) -> tuple[str, Blocks]:
    """The case in the staff channel: what was asked, what we know, why it needs a human."""
    status = STATUS_LINE.get(s.status, s.status)
    if s.claimed_by and s.status != "open":
        status += f" by {mention(s.claimed_by)}"
    facts = ", ".join(f"{k}={v}" for k, v in s.facts.items()) or "none yet"
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{s.id}: needs a human"}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Status:*\n{status}"},
            {"type": "mrkdwn", "text": f"*Asked via:*\n{escape(s.channel)}"},
            {"type": "mrkdwn", "text": f"*Why staff:*\n{escape(s.why)}"},
            {"type": "mrkdwn", "text": f"*Rules:*\n{escape(', '.join(s.rules) or '-')}"},
        ]},
        section(f"*Question:*\n>{escape(s.question)}"),
        section(f"*Known facts:* {escape(facts)}"),
        section(f"*Bot's answer so far:*\n{escape(s.decision_text) or '-'}"),
    ]
    if s.recent[1:]:
        blocks.append(section("*Later messages:*\n" + "\n".join(f"• {escape(r)}" for r in s.recent[1:])))
    buttons = []
    if s.status == "open":
        buttons.append({"type": "button", "action_id": "case_claim", "text": {"type": "plain_text", "text": "Claim"},
                        "style": "primary", "value": s.id})
    if s.status != "resolved":
        buttons.append({"type": "button", "action_id": "case_reply", "text": {"type": "plain_text", "text": "Reply"},
                        "value": s.id})
        buttons.append({"type": "button", "action_id": "case_resolve", "text": {"type": "plain_text", "text": "Resolve"},
                        "value": s.id})
    if buttons:
        blocks.append({"type": "actions", "block_id": "case_actions", "elements": buttons})
    blocks.append(context("Reply with the button or in this thread to answer the practice; only QCP staff replies are relayed."))
    fallback = f"{s.id} ({s.status}) needs a human: {s.why}. Question: {s.question}"
    return _cut(fallback, 3900), blocks


REPLY_VIEW = "case_reply"  # callback_id of the Reply modal
REPLY_BLOCK, REPLY_INPUT = "reply", "text"


def reply_modal(case_id: str) -> dict[str, Any]:
    """The Reply button's form: what staff type here reaches the practice where it asked."""
    return {
        "type": "modal", "callback_id": REPLY_VIEW, "private_metadata": case_id,
        "title": {"type": "plain_text", "text": f"Reply on {case_id}"[:24]},
        "submit": {"type": "plain_text", "text": "Send to practice"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "input", "block_id": REPLY_BLOCK, "label": {"type": "plain_text", "text": "Your answer"},
                    "element": {"type": "plain_text_input", "action_id": REPLY_INPUT, "multiline": True}}],
    }


def reply_from_view(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(REPLY_BLOCK) or {}
    return str((values.get(REPLY_INPUT) or {}).get("value") or "")


def staff_note_message(text: str, *, from_practice: bool) -> tuple[str, Blocks]:
    """A line appended to the case thread: the practice's later message, or a reply staff
    gave elsewhere (email, CLI) so the thread stays the full story."""
    line = f":speech_balloon: *The practice wrote:* {escape(text)}" if from_practice else f":outbox_tray: {escape(text)}"
    return _cut(("The practice wrote: " if from_practice else "") + text, 3900), [section(line)]
