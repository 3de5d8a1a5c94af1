"""Catch up after an outage: what people asked while the web process was down.

Slack retries an event for about five minutes and then drops it. When the web process
starts, it reads the conversations it is in (users.conversations, conversations.history,
conversations.replies) from just before the newest request it had stored, bounded by
QOPI_SLACK_CATCHUP_HOURS and a page per conversation, and stores every message it would
have been sent an event for -- DMs, mentions, replies in its threads -- in the inbox as a
synthetic event (external id `catchup:CHANNEL:TS`, so a second start stores nothing new).
The usual inbox processor answers them; the listeners claim each message by channel + ts,
so a message that did arrive as an event (or arrives now as a late retry) is answered once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from qopi_bot_handlers.slack.events import Inbound, triage_envelope
from qopi_bot.logs import get_logger
from qopi_bot.settings import Settings
from qopi_bot.store import Store, utcnow

log = get_logger("handlers.slack.catchup")

Accept = Callable[[Inbound, bytes, dict[str, Any]], Awaitable[bool]]
PAGE = 200  # messages read per conversation (and per thread): a bound, not a promise
MAX_CONVERSATIONS = 500
MARGIN = dt.timedelta(minutes=2)  # look a little before the newest stored request (clock skew)


class CatchUp:
    def __init__(self, store: Store, client: AsyncWebClient, settings: Settings, accept: Accept) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.accept = accept

    async def run(self) -> int:
        """Store what was missed; returns how many messages were queued. Never raises."""
        try:
            return await self._run()
        except Exception as exc:  # Slack unreachable, a scope missing: live events still work
            log.warning("slack.catchup_failed", error=type(exc).__name__)
            return 0

    async def _oldest(self) -> float | None:
        hours = self.settings.slack_catchup_hours
        newest = await self.store.inbox_newest("slack")
        if hours <= 0 or newest is None:
            return None  # disabled, or a fresh install: nothing was missed, history is not ours to answer
        floor = utcnow() - dt.timedelta(hours=hours)
        return max(newest - MARGIN, floor).timestamp()

    async def _run(self) -> int:
        oldest = await self._oldest()
        if oldest is None:
            return 0
        auth = await self.client.auth_test()
        bot, team = str(auth.get("user_id") or ""), str(auth.get("team_id") or "T")
        listed = await self.client.users_conversations(types="im,public_channel,private_channel", exclude_archived=True,
                                                      limit=MAX_CONVERSATIONS)
        queued = 0
        for conv in (listed.get("channels") or [])[:MAX_CONVERSATIONS]:
            channel = str(conv.get("id") or "")
            if not channel:
                continue
            im = bool(conv.get("is_im")) or channel.startswith("D")
            for message in await self._missed(channel, oldest):
                queued += await self._store(team, bot, channel, im, message)
        log.info("slack.catchup_done", queued=queued, since=round(oldest))
        return queued

    async def _missed(self, channel: str, oldest: float) -> list[dict[str, Any]]:
        history = await self.client.conversations_history(channel=channel, oldest=f"{oldest:.6f}", limit=PAGE)
        found: list[dict[str, Any]] = []
        for message in history.get("messages") or []:
            if float(message.get("ts") or 0) > oldest:
                found.append(message)
            if message.get("reply_count") and float(message.get("latest_reply") or 0) > oldest:
                replies = await self.client.conversations_replies(channel=channel, ts=message["ts"],
                                                                  oldest=f"{oldest:.6f}", limit=PAGE)
                found += [r for r in (replies.get("messages") or [])[1:] if float(r.get("ts") or 0) > oldest]
        return sorted(found, key=lambda m: float(m.get("ts") or 0))  # answered in the order they were asked

    async def _store(self, team: str, bot: str, channel: str, im: bool, message: dict[str, Any]) -> int:
        ts, text = str(message.get("ts") or ""), str(message.get("text") or "")
        event: dict[str, Any] = {k: v for k, v in message.items() if k in ("user", "text", "ts", "thread_ts", "team",
                                                                            "subtype", "bot_id")}
        event["channel"] = channel
        if im:
            event.update(type="message", channel_type="im")
        elif bot and f"<@{bot}>" in text:
            event["type"] = "app_mention"  # what Slack would have sent for a mention
        else:
            event.update(type="message", channel_type="channel")  # a thread reply: the listener decides
        envelope = {"type": "event_callback", "team_id": team, "event_id": f"catchup:{channel}:{ts}",
                    "event_time": int(float(ts or 0)), "event": event,
                    "authorizations": [{"user_id": bot, "team_id": team, "is_bot": True}]}
        found = triage_envelope(envelope)
        if found.inbound is None:
            return 0  # bot posts, edits, channel chatter without a mention
        raw = json.dumps(envelope).encode()
        meta = {"kind": "event", "conversation": found.inbound.conversation, "content_type": "application/json",
                "retry_num": None, "retry_reason": "catchup"}
        return 1 if await self.accept(found.inbound, raw, meta) else 0
