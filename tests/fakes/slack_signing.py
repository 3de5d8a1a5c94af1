"""Build and send Slack requests signed the way Slack signs them.

Signature (https://api.slack.com/authentication/verifying-requests-from-slack):
``X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}"))`` and
``X-Slack-Request-Timestamp: {timestamp}`` (unix seconds). Retries carry
``X-Slack-Retry-Num`` (1, 2, 3) and ``X-Slack-Retry-Reason`` (e.g. ``http_timeout``).

Event builders (``app_mention``, ``dm_message``, ...) return the inner *event*;
wrap it with ``event_callback(event)`` to get the Events API envelope, and
``encode_json`` it to get the body to sign. ``slash_command_form`` and
``block_action_form`` return the url-encoded body bytes directly.

Every ``ts`` generated here is unique and strictly increasing within the process.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Mapping, Optional, Tuple, Union

__all__ = [
    "sign",
    "encode_json",
    "next_ts",
    "event_callback",
    "app_mention",
    "channel_message",
    "dm_message",
    "thread_message",
    "bot_message",
    "message_changed",
    "message_deleted",
    "slash_command_form",
    "block_action_form",
    "url_verification",
    "post_signed",
    "post_signed_async",
    "BOT_USER_ID",
    "BOT_ID",
]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
APP_ID = "A1"
VERIFICATION_TOKEN = "verification-token-deprecated"

Body = Union[bytes, str, Mapping[str, Any]]

# ----------------------------------------------------------------------------- ts / ids
_ts_lock = threading.Lock()
_last_ts_us = 0
_ids = itertools.count(1)


def next_ts() -> str:
    """A Slack-style ``ts`` ("1716200000.123456"), unique and increasing."""
    global _last_ts_us
    with _ts_lock:
        now_us = int(time.time() * 1_000_000)
        _last_ts_us = max(now_us, _last_ts_us + 1)
        us = _last_ts_us
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _unique(prefix: str, width: int = 9) -> str:
    return f"{prefix}{next(_ids):0{width}d}"


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


# ----------------------------------------------------------------------------- signing
def _to_bytes(body: Body) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return encode_json(body)


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """JSON body bytes as Slack sends them (compact)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(
    body: Body,
    secret: str,
    timestamp: Optional[Union[int, float, str]] = None,
    *,
    retry_num: Optional[int] = None,
    retry_reason: Optional[str] = None,
) -> Dict[str, str]:
    """Headers Slack would send with ``body``: X-Slack-Request-Timestamp and X-Slack-Signature.

    ``timestamp`` defaults to now; pass ``time.time() - 600`` for a stale request.
    ``retry_num`` / ``retry_reason`` add X-Slack-Retry-Num / X-Slack-Retry-Reason
    (reason defaults to "http_timeout" when only retry_num is given).
    """
    ts = str(int(time.time() if timestamp is None else float(timestamp)))
    raw = _to_bytes(body)
    base = b"v0:" + ts.encode() + b":" + raw
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    elif retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


# ----------------------------------------------------------------------------- Events API
def event_callback(
    event: Dict[str, Any],
    event_id: Optional[str] = None,
    team: str = TEAM_ID,
    api_app_id: str = APP_ID,
    *,
    event_time: Optional[int] = None,
) -> Dict[str, Any]:
    """The Events API envelope around ``event`` (unique ``event_id`` unless given)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team,
        "context_team_id": team,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(event_time if event_time is not None else time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def _user_message(
    text: str,
    user: str,
    channel: str,
    ts: Optional[str],
    thread_ts: Optional[str],
    team: str,
) -> Dict[str, Any]:
    ts = ts or next_ts()
    ev: Dict[str, Any] = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
    }
    if thread_ts:
        ev["thread_ts"] = thread_ts
        ev["parent_user_id"] = user if thread_ts == ts else BOT_USER_ID
    return ev


def app_mention(
    text: str,
    user: str = "U1",
    channel: str = "C1",
    ts: Optional[str] = None,
    thread_ts: Optional[str] = None,
    *,
    team: str = TEAM_ID,
    mention: bool = True,
) -> Dict[str, Any]:
    """An ``app_mention`` event. Real mentions contain ``<@UBOT>`` in the text, so it
    is prepended unless already present (``mention=False`` to send text verbatim).
    Like Slack's, it has no ``channel_type``."""
    if mention and f"<@{BOT_USER_ID}>" not in text:
        text = f"<@{BOT_USER_ID}> {text}"
    ts = ts or next_ts()
    ev: Dict[str, Any] = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "app_mention",
        "text": text,
        "user": user,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        ev["thread_ts"] = thread_ts
    return ev


def channel_message(
    text: str,
    user: str = "U1",
    channel: str = "C1",
    ts: Optional[str] = None,
    thread_ts: Optional[str] = None,
    *,
    team: str = TEAM_ID,
) -> Dict[str, Any]:
    """A ``message`` event in a public channel (``message.channels``)."""
    return _user_message(text, user, channel, ts, thread_ts, team)


def dm_message(
    text: str,
    user: str = "U1",
    channel: str = "D1",
    ts: Optional[str] = None,
    *,
    thread_ts: Optional[str] = None,
    team: str = TEAM_ID,
) -> Dict[str, Any]:
    """A ``message`` event in a DM with the bot (``channel_type: im``)."""
    return _user_message(text, user, channel, ts, thread_ts, team)


def thread_message(
    text: str,
    user: str,
    channel: str,
    thread_ts: str,
    ts: Optional[str] = None,
    *,
    team: str = TEAM_ID,
) -> Dict[str, Any]:
    """A reply in the thread ``thread_ts`` (channel_type inferred from the channel id)."""
    return _user_message(text, user, channel, ts, thread_ts, team)


def bot_message(
    text: str,
    channel: str = "C1",
    ts: Optional[str] = None,
    thread_ts: Optional[str] = None,
    *,
    bot_id: str = BOT_ID,
    user: Optional[str] = BOT_USER_ID,
    app_id: str = APP_ID,
    subtype: Optional[str] = "bot_message",
    team: str = TEAM_ID,
) -> Dict[str, Any]:
    """A message posted by a bot. Defaults to our own bot (the echo of our own post).
    ``subtype=None`` gives the modern form (bot_id + user, no subtype)."""
    ts = ts or next_ts()
    ev: Dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "bot_id": bot_id,
        "app_id": app_id,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
        "bot_profile": {"id": bot_id, "app_id": app_id, "name": "qopi-bot", "deleted": False, "team_id": team},
    }
    if subtype:
        ev["subtype"] = subtype
        ev["username"] = "qopi-bot"
    if user:
        ev["user"] = user
    if thread_ts:
        ev["thread_ts"] = thread_ts
    return ev


def message_changed(
    text: str,
    user: str = "U1",
    channel: str = "C1",
    message_ts: Optional[str] = None,
    *,
    previous_text: str = "(original text)",
    thread_ts: Optional[str] = None,
    ts: Optional[str] = None,
    team: str = TEAM_ID,
) -> Dict[str, Any]:
    """A ``message_changed`` event: message ``message_ts`` was edited to ``text``."""
    message_ts = message_ts or next_ts()
    ts = ts or next_ts()
    new = {"type": "message", "text": text, "user": user, "team": team, "ts": message_ts,
           "edited": {"user": user, "ts": ts}}
    old = {"type": "message", "text": previous_text, "user": user, "team": team, "ts": message_ts}
    if thread_ts:
        new["thread_ts"] = old["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": new,
        "previous_message": old,
        "channel": channel,
        "hidden": True,
        "ts": ts,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
    }


def message_deleted(
    deleted_ts: str,
    channel: str = "C1",
    user: str = "U1",
    *,
    previous_text: str = "(deleted text)",
    thread_ts: Optional[str] = None,
    ts: Optional[str] = None,
    team: str = TEAM_ID,
) -> Dict[str, Any]:
    """A ``message_deleted`` event for the message ``deleted_ts``."""
    ts = ts or next_ts()
    old = {"type": "message", "text": previous_text, "user": user, "team": team, "ts": deleted_ts}
    if thread_ts:
        old["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": old,
        "channel": channel,
        "hidden": True,
        "deleted_ts": deleted_ts,
        "ts": ts,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
    }


def url_verification(challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P") -> Dict[str, Any]:
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


# ----------------------------------------------------------------------------- commands / interactivity
def slash_command_form(
    text: str,
    user_id: str = "U1",
    channel_id: str = "C1",
    command: str = "/qopi",
    response_url: Optional[str] = None,
    *,
    trigger_id: Optional[str] = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    user_name: Optional[str] = None,
    channel_name: Optional[str] = None,
) -> bytes:
    """The url-encoded body Slack POSTs for a slash command."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": "qopi-test",
        "channel_id": channel_id,
        "channel_name": channel_name or ("directmessage" if channel_id.startswith("D") else channel_id.lower()),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or f"https://hooks.slack.com/commands/{team_id}/{_unique('', 12)}/x",
        "trigger_id": trigger_id or f"{_unique('', 12)}.{_unique('', 12)}.{uuid.uuid4().hex}",
    }
    return urllib.parse.urlencode(fields).encode("ascii")


def block_action_form(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    response_url: Optional[str] = None,
    *,
    block_id: str = "case_actions",
    thread_ts: Optional[str] = None,
    message_text: str = "",
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    trigger_id: Optional[str] = None,
) -> bytes:
    """The url-encoded ``payload=<json>`` body Slack POSTs when a button is clicked."""
    message: Dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": api_app_id,
        "team": team_id,
        "text": message_text,
        "ts": message_ts,
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or f"{_unique('', 12)}.{_unique('', 12)}.{uuid.uuid4().hex}",
        "team": {"id": team_id, "domain": "qopi-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url or f"https://hooks.slack.com/actions/{team_id}/{_unique('', 12)}/x",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": next_ts(),
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode("ascii")


# ----------------------------------------------------------------------------- HTTP
def _guess_content_type(raw: bytes) -> str:
    return "application/json" if raw.lstrip().startswith(b"{") else "application/x-www-form-urlencoded"


def _request_headers(
    raw: bytes,
    secret: str,
    content_type: Optional[str],
    extra_headers: Optional[Mapping[str, str]],
    timestamp: Optional[Union[int, float, str]],
    retry_num: Optional[int],
    retry_reason: Optional[str],
) -> Dict[str, str]:
    headers = {"Content-Type": content_type or _guess_content_type(raw), "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    headers.update(sign(raw, secret, timestamp, retry_num=retry_num, retry_reason=retry_reason))
    if extra_headers:
        headers.update(extra_headers)
    return headers


def post_signed(
    url: str,
    body: Body,
    secret: str,
    content_type: Optional[str] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    timestamp: Optional[Union[int, float, str]] = None,
    *,
    retry_num: Optional[int] = None,
    retry_reason: Optional[str] = None,
    timeout: float = 30.0,
) -> Tuple[int, str]:
    """POST ``body`` (bytes/str, or a dict sent as JSON) signed with ``secret``.
    Returns (status, text) for every status, including 4xx/5xx. ``extra_headers``
    override the signed ones (e.g. a forged X-Slack-Signature)."""
    raw = _to_bytes(body)
    headers = _request_headers(raw, secret, content_type, extra_headers, timestamp, retry_num, retry_reason)
    req = urllib.request.Request(url, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", errors="replace")


async def post_signed_async(
    url: str,
    body: Body,
    secret: str,
    content_type: Optional[str] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    timestamp: Optional[Union[int, float, str]] = None,
    *,
    retry_num: Optional[int] = None,
    retry_reason: Optional[str] = None,
    timeout: float = 30.0,
    session: Any = None,
) -> Tuple[int, str]:
    """Async twin of ``post_signed`` (aiohttp); pass ``session`` to reuse one."""
    import aiohttp

    raw = _to_bytes(body)
    headers = _request_headers(raw, secret, content_type, extra_headers, timestamp, retry_num, retry_reason)
    if session is not None:
        async with session.post(url, data=raw, headers=headers) as resp:
            return resp.status, await resp.text()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.post(url, data=raw, headers=headers) as resp:
            return resp.status, await resp.text()
