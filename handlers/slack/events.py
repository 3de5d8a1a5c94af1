"""What Slack sent us, decided without I/O: keep it, ignore it, or answer a challenge.

The ack path (qopi_bot_handlers.slack.app) runs `triage` on every verified request before anything is
stored, so it must be fast and pure. The listeners use the same key/origin helpers, so the
web layer and the processor always agree on which conversation a message belongs to.

Conversation keys (the dialogue's memory of one thread):
  - channel thread:  slack:{team}:{channel}:{thread root ts}   (a mention starts its own thread)
  - DM:              slack:{team}:{dm channel}                 (a DM is one long conversation)
  - /qopi:           slack:{team}:command:{channel}:{user}     (answers are private to the user,
                                                                so each user has their own)
`team` is the workspace the app is installed in (the envelope's team_id), not the author's
team, so shared channels do not split one thread into two conversations.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

# Message subtypes that are still a person writing something new. Everything else
# (message_changed, message_deleted, bot_message, channel_join, ...) is ignored.
_USER_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

InboundKind = Literal["event", "command", "action"]


class BadRequest(ValueError):
    """A correctly signed body we cannot use; the web layer answers 400 with this text."""


@dataclass(frozen=True)
class Inbound:
    """A request worth storing in the inbox and processing after the ack."""

    kind: InboundKind
    external_id: str  # inbox dedupe key: Slack's event_id, or the click/command trigger
    conversation: str  # the conversation (or case) it belongs to; kept in the inbox meta for diagnosis


@dataclass(frozen=True)
class Triage:
    challenge: str | None = None  # url_verification: echo this
    inbound: Inbound | None = None  # store and process; None (and no challenge) = ack and ignore


IGNORE = Triage()


# ---------------------------------------------------------------- keys and origins
def thread_key(team: str, channel: str, thread_ts: str) -> str:
    return f"slack:{team}:{channel}:{thread_ts}"


def dm_key(team: str, channel: str) -> str:
    return f"slack:{team}:{channel}"


def command_key(team: str, channel: str, user: str) -> str:
    return f"slack:{team}:command:{channel}:{user}"


def is_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def event_team(body: dict[str, Any]) -> str:
    return str(body.get("team_id") or (body.get("event") or {}).get("team") or "T")


def bot_user_id(body: dict[str, Any]) -> str | None:
    """Our bot's user id, from the envelope (Slack lists the app's authorizations there)."""
    auths = body.get("authorizations")
    if isinstance(auths, list) and auths and isinstance(auths[0], dict):
        uid = auths[0].get("user_id")
        return uid if isinstance(uid, str) else None
    return None


def conversation_for(body: dict[str, Any], event: dict[str, Any]) -> tuple[str, str | None]:
    """(conversation key, thread_ts to answer in) for a message or mention event."""
    team, channel = event_team(body), str(event.get("channel", ""))
    if is_dm(event):
        # A DM is one conversation; answer in a DM thread only if the user wrote in one.
        return dm_key(team, channel), event.get("thread_ts")
    root = str(event.get("thread_ts") or event.get("ts"))
    return thread_key(team, channel, root), root


_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def plain_text(text: str, bot_user: str | None = None) -> str:
    """Slack mrkdwn as the person typed it: mentions of the bot dropped, links unwrapped."""
    def link(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "" if bot_user and target[1:] == bot_user else (label or target)
        if target.startswith(("#", "!")):
            return label or ""
        return label or target.removeprefix("mailto:")
    out = re.sub(r"[ \t]{2,}", " ", _LINK.sub(link, text))  # where a mention was cut out
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


# ---------------------------------------------------------------- triage
def triage(raw: bytes, content_type: str) -> Triage:
    """Classify a verified request body. Raises BadRequest for anything malformed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("body is not UTF-8") from exc
    if content_type == "application/json" or (not content_type and text.lstrip().startswith("{")):
        return _triage_json(text)
    if content_type in ("application/x-www-form-urlencoded", ""):
        return _triage_form(text, raw)
    raise BadRequest(f"unsupported content type {content_type!r}")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return data


def _triage_json(text: str) -> Triage:
    return triage_envelope(_json_object(text, "body"))


def triage_envelope(body: dict[str, Any]) -> Triage:
    """An Events API body (HTTP) or a Socket Mode `events_api` payload."""
    kind = body.get("type")
    if kind == "url_verification":
        challenge = body.get("challenge")
        if not isinstance(challenge, str):
            raise BadRequest("url_verification without a challenge")
        return Triage(challenge=challenge)
    if kind != "event_callback":
        return IGNORE  # app_rate_limited and friends: nothing to do
    event_id, event = body.get("event_id"), body.get("event")
    if not isinstance(event_id, str) or not event_id or not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadRequest("event_callback needs event_id and an event with a type")
    if not wanted_event(event, bot_user_id(body)):
        return IGNORE
    if not isinstance(event.get("channel"), str) or not isinstance(event.get("user"), str):
        raise BadRequest("message event without channel or user")
    key, _ = conversation_for(body, event)
    return Triage(inbound=Inbound("event", event_id, key))


def wanted_event(event: dict[str, Any], bot_user: str | None) -> bool:
    """Only a person writing something new, where the bot may have to answer."""
    etype = event.get("type")
    if event.get("bot_id") or (bot_user and event.get("user") == bot_user):
        return False  # our own posts echo back as events; other bots never get answers
    if etype == "app_mention":
        # Mentions in a DM also arrive as message.im; answering both would answer twice.
        return not is_dm(event)
    if etype != "message" or event.get("subtype") not in _USER_SUBTYPES:
        return False  # edits, deletes, joins, bot messages
    if not isinstance(event.get("text"), str) or not event.get("user"):
        return False
    if is_dm(event):
        return True
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts"):
        return False  # top-level channel chatter: the bot only answers when mentioned
    # A thread reply that mentions the bot arrives again as app_mention: answer that one.
    return not (bot_user and f"<@{bot_user}>" in event["text"])


def _triage_form(text: str, raw: bytes) -> Triage:
    try:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text)).items()}
    except ValueError as exc:
        raise BadRequest("form body is malformed") from exc
    if "ssl_check" in form:
        return IGNORE
    if "payload" in form:
        return triage_action(_json_object(form["payload"], "payload"), raw)
    if "command" in form:
        return triage_command(form, raw)
    raise BadRequest("form body is neither a slash command nor an interaction payload")


def _fallback_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def triage_action(payload: dict[str, Any], raw: bytes) -> Triage:
    """A button click (`block_actions`) or the Reply modal's submission (`view_submission`)."""
    if payload.get("type") == "view_submission":
        view, user = payload.get("view"), payload.get("user")
        if not isinstance(view, dict) or not isinstance(user, dict) or not view.get("id"):
            raise BadRequest("view_submission needs a view and a user")
        return Triage(inbound=Inbound("action", f"view:{view['id']}:{view.get('hash') or ''}",
                                      f"case:{view.get('private_metadata') or ''}"))
    if payload.get("type") != "block_actions":
        return IGNORE
    actions, user = payload.get("actions"), payload.get("user")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict) or not isinstance(user, dict):
        raise BadRequest("block_actions needs actions and user")
    value = str(actions[0].get("value") or "")
    # Each click has its own trigger_id: a double click is two clicks, a retry is not.
    click = str(payload.get("trigger_id") or actions[0].get("action_ts") or _fallback_id(raw))
    return Triage(inbound=Inbound("action", f"action:{click}", f"case:{value}"))


def triage_command(form: dict[str, Any], raw: bytes) -> Triage:
    missing = [f for f in ("user_id", "channel_id", "team_id") if not form.get(f)]
    if missing:
        raise BadRequest(f"slash command without {', '.join(missing)}")
    key = command_key(str(form["team_id"]), str(form["channel_id"]), str(form["user_id"]))
    return Triage(inbound=Inbound("command", f"command:{form.get('trigger_id') or _fallback_id(raw)}", key))


def triage_socket(request_type: str, payload: dict[str, Any]) -> Triage:
    """The same decision for a Socket Mode envelope (payloads arrive already parsed)."""
    raw = json.dumps(payload, sort_keys=True).encode()
    if request_type == "events_api":
        return triage_envelope(payload)
    if request_type == "slash_commands":
        return triage_command(payload, raw)
    if request_type == "interactive":
        return triage_action(payload, raw)
    return IGNORE
