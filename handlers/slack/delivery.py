"""Deliver Slack outbox items: the only code that calls the Web API.

`SlackSender.send(item)` is the `Sender` the shared Dispatcher calls. It either returns
(the item is sent) or raises DeliveryError: with `retry_after` for 429 (Slack's
Retry-After, honoured exactly), plain for 5xx/timeouts (the dispatcher backs off), or
`permanent` for errors a retry cannot fix (channel_not_found, invalid_auth, ...).

Never twice: every post carries message metadata with the outbox dedupe key. When an
earlier attempt ended ambiguously (a timeout or 5xx: Slack may have posted it anyway), the
next attempt first looks for a message carrying that key in the channel/thread and, if it
finds one, records it as sent instead of posting again."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from qopi_bot_handlers.slack.blocks import relay_message, staff_case_message, staff_note_message, text_message
from qopi_bot.cases import summarize
from qopi_bot.logs import get_logger
from qopi_bot.outbox import DeliveryError
from qopi_bot.records import CaseRecord, OutboxItem
from qopi_bot.settings import Settings
from qopi_bot.store import Store

log = get_logger("handlers.slack.delivery")

METADATA_EVENT = "qopi_outbox"
AMBIGUOUS = "ambiguous:"  # prefix of errors after which the post may have happened anyway
# Slack `error` codes worth retrying; every other ok:false error is permanent.
RETRYABLE = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
                       "team_added_to_org"})

Result = dict[str, Any]


def web_client(settings: Settings, session: aiohttp.ClientSession | None, timeout: float) -> AsyncWebClient:
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    # retry_handlers=[]: the SDK's own connection-error retry could post a second copy;
    # retries belong to the outbox, which knows how to check first.
    # (`timeout` is typed int in slack_sdk but goes straight into aiohttp, which takes floats.)
    return AsyncWebClient(token=settings.slack_bot_token or None, base_url=base, timeout=timeout,  # type: ignore[arg-type]
                          session=session, retry_handlers=[])


def _api_error(exc: SlackApiError) -> DeliveryError:
    resp = exc.response
    status = getattr(resp, "status_code", 200)
    data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
    error = str(data.get("error") or f"http {status}")
    if status == 429 or error == "ratelimited":
        raw = (resp.headers or {}).get("Retry-After") or (resp.headers or {}).get("retry-after")
        try:
            wait = max(0.0, float(raw)) if raw is not None else 1.0
        except ValueError:
            wait = 1.0
        return DeliveryError(f"slack 429 {error}", retry_after=wait)
    if status >= 500:
        return DeliveryError(f"{AMBIGUOUS} slack http {status}")
    if error in RETRYABLE:
        return DeliveryError(f"slack error {error}")
    return DeliveryError(f"slack error {error}", permanent=True)


class SlackSender:
    def __init__(self, settings: Settings, store: Store, client: AsyncWebClient,
                 session: aiohttp.ClientSession | None = None, timeout: float = 10.0) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.session = session
        self.timeout = timeout

    async def send(self, item: OutboxItem) -> Result | None:
        handler = getattr(self, f"_send_{item.kind}", None)
        if handler is None:
            raise DeliveryError(f"unknown slack outbox kind {item.kind!r}", permanent=True)
        try:
            result: Result | None = await handler(item)
        except SlackApiError as exc:
            raise _api_error(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"{AMBIGUOUS} {type(exc).__name__}") from None
        return result

    # ------------------------------------------------------------ practice-facing
    async def _send_answer(self, item: OutboxItem) -> Result:
        p = item.payload
        return await self._post(item, channel=p["channel"], thread_ts=p.get("thread_ts"), text=p["text"],
                                blocks=p.get("blocks"))

    async def _send_relay(self, item: OutboxItem) -> Result:
        p = item.payload
        channel, thread_ts = p["channel"], p.get("thread_ts")
        case = await self.store.get_case(int(p["case"])) if p.get("case") is not None else None
        if case is not None and case.origin.get("via") == "command" and case.origin.get("user"):
            # /qopi answers were private, there is no thread: reach the user in a DM.
            opened = await self.client.conversations_open(users=case.origin["user"])
            channel, thread_ts = opened["channel"]["id"], None
        text, blocks = relay_message(p["text"])
        return await self._post(item, channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)

    async def _send_reminder(self, item: OutboxItem) -> Result:
        """A reminder before a score expires, in the thread (or DM) where the practice asked."""
        p = item.payload
        channel, thread_ts = p["channel"], p.get("thread_ts")
        if p.get("via") == "command" and p.get("user"):  # /qopi had no thread: the user's DM
            opened = await self.client.conversations_open(users=p["user"])
            channel, thread_ts = opened["channel"]["id"], None
        text, blocks = text_message(p["text"])
        return await self._post(item, channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)

    async def _send_command_reply(self, item: OutboxItem) -> Result:
        """/qopi: visible only to the user, via response_url; chat.postEphemeral if it expired."""
        p = item.payload
        if p.get("response_url"):
            hook = AsyncWebhookClient(p["response_url"], timeout=self.timeout, session=self.session,  # type: ignore[arg-type]
                                      retry_handlers=[])
            resp = await hook.send_dict({"response_type": "ephemeral", "replace_original": False,
                                         "text": p["text"], "blocks": p.get("blocks")})
            if resp.status_code == 200:
                return {"via": "response_url"}
            if resp.status_code == 429:
                raise DeliveryError("response_url 429", retry_after=float(resp.headers.get("Retry-After", 1) or 1))
            if resp.status_code >= 500:
                raise DeliveryError(f"{AMBIGUOUS} response_url http {resp.status_code}")
            log.warning("slack.response_url_refused", item=item.id, status=resp.status_code)
        await self.client.chat_postEphemeral(channel=p["channel"], user=p["user"], text=p["text"], blocks=p.get("blocks"))
        return {"via": "ephemeral"}

    async def _send_console_link(self, item: OutboxItem) -> Result:
        from qopi_bot.console_auth import LINK_MINUTES, issue_link_token, link_url

        user = item.payload["user"]
        opened = await self.client.conversations_open(users=user)
        token = await issue_link_token(self.store.engine, user)
        text = (f"Your sign-in link to the QOPI bot staff console (works once, for {LINK_MINUTES} minutes):\n"
                f"{link_url(self.settings.console_base_url, token)}")
        # No unfurl: Slack's link preview would open (and so spend) the one-time link.
        await self.client.chat_postMessage(channel=opened["channel"]["id"], text=text, unfurl_links=False,
                                           unfurl_media=False)
        return {"via": "dm"}

    async def _send_ephemeral(self, item: OutboxItem) -> Result:
        p = item.payload
        text, blocks = text_message(p["text"])
        await self.client.chat_postEphemeral(channel=p["channel"], user=p["user"], text=text, blocks=blocks)
        return {"via": "ephemeral"}

    async def _send_views_open(self, item: OutboxItem) -> Result:
        """The Reply form. Slack's trigger lives 3 seconds: if it expired, say how else to reply."""
        p = item.payload
        try:
            await self.client.views_open(trigger_id=p["trigger_id"], view=p["view"])
            return {"via": "views.open"}
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("error") not in ("expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"):
                raise
        text, blocks = text_message(f"The reply form for {p.get('case')} could not open in time. Click Reply again, "
                                    "or answer in the case message's thread.")
        await self.client.chat_postEphemeral(channel=p["channel"], user=p["user"], text=text, blocks=blocks)
        return {"via": "ephemeral", "fallback": True}

    # ------------------------------------------------------------ staff-facing
    def _staff_slack_enabled(self) -> bool:
        return bool(self.settings.staff_channel and self.settings.slack_bot_token)

    async def _case(self, item: OutboxItem) -> CaseRecord:
        case = await self.store.get_case(int(item.payload["case"]))
        if case is None:
            raise DeliveryError(f"case {item.payload['case']} does not exist", permanent=True)
        return case

    async def _send_staff_case(self, item: OutboxItem) -> Result:
        case = await self._case(item)
        if case.staff_slack_ts:  # already posted (an earlier attempt got that far)
            return {"channel": case.staff_slack_channel, "ts": case.staff_slack_ts}
        text, blocks = staff_case_message(summarize(case))
        result = await self._post(item, channel=item.payload.get("channel") or self.settings.staff_channel,
                                  thread_ts=None, text=text, blocks=blocks)
        # Events name channels by id, so store the id Slack answered, not "#qopi-staff".
        await self.store.update_case(case.number, staff_slack_channel=result["channel"], staff_slack_ts=result["ts"])
        return result

    async def _posted_case(self, item: OutboxItem) -> CaseRecord | None:
        """The case whose staff message exists; None when there is no staff channel at all.
        While the case message is still on its way, the item waits (retried shortly)."""
        case = await self._case(item)
        if case.staff_slack_ts:
            return case
        if not self._staff_slack_enabled():
            return None
        raise DeliveryError("case message not posted yet", retry_after=1.0)

    async def _send_staff_case_update(self, item: OutboxItem) -> Result:
        case = await self._posted_case(item)
        if case is None:
            return {"skipped": "no staff channel"}
        text, blocks = staff_case_message(summarize(case))
        await self.client.chat_update(channel=case.staff_slack_channel, ts=case.staff_slack_ts, text=text, blocks=blocks)
        return {"channel": case.staff_slack_channel, "ts": case.staff_slack_ts}

    async def _send_staff_note(self, item: OutboxItem) -> Result:
        case = await self._posted_case(item)
        if case is None:
            return {"skipped": "no staff channel"}
        # cases.reply marks notes about replies given elsewhere with ":reply:" in the key.
        text, blocks = staff_note_message(item.payload["text"], from_practice=":reply:" not in item.dedupe_key)
        return await self._post(item, channel=case.staff_slack_channel or "", thread_ts=case.staff_slack_ts,
                                text=text, blocks=blocks)

    # ------------------------------------------------------------ posting, exactly once
    async def _post(self, item: OutboxItem, *, channel: str, thread_ts: str | None, text: str,
                    blocks: list[dict[str, Any]] | None) -> Result:
        if item.attempts > 1 and (item.last_error or "").startswith(AMBIGUOUS):
            found = await self._already_posted(item, channel, thread_ts)
            if found:
                log.info("slack.post_recovered", item=item.id, kind=item.kind)
                return {"channel": channel, "ts": found, "recovered": True}
        marker = {"event_type": METADATA_EVENT, "event_payload": {"key": item.dedupe_key}}
        try:
            resp = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks,
                                                      metadata=marker, unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("error") != "invalid_blocks" or not blocks:
                raise
            # A rendering bug must not cost the practice its answer: send the plain text.
            log.error("slack.invalid_blocks", item=item.id, kind=item.kind)
            resp = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, metadata=marker)
        return {"channel": resp["channel"], "ts": resp["ts"]}

    async def _already_posted(self, item: OutboxItem, channel: str, thread_ts: str | None) -> str | None:
        created = item.created_at or dt.datetime.now(dt.UTC)
        oldest = f"{created.timestamp() - 120:.6f}"
        try:
            if thread_ts:
                resp = await self.client.conversations_replies(channel=channel, ts=thread_ts, oldest=oldest,
                                                               include_all_metadata=True, limit=200)
            else:
                resp = await self.client.conversations_history(channel=channel, oldest=oldest,
                                                               include_all_metadata=True, limit=200)
        except (SlackApiError, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Cannot tell: post again. A rare duplicate beats a lost answer.
            log.warning("slack.post_check_failed", item=item.id, error=type(exc).__name__)
            return None
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == item.dedupe_key:
                return str(message.get("ts"))
        return None


async def close_quietly(session: aiohttp.ClientSession | None) -> None:
    if session is not None and not session.closed:
        await session.close()
        await asyncio.sleep(0)
