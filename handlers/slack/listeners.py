"""Bolt listeners: parse what Slack sent, call the dialogue or case service, enqueue.

They run in the inbox processor, after the HTTP ack, so they may take their time. They
never call the Web API: every reply is an outbox item (dedupe key derived from the Slack
event id or click), delivered by qopi_bot_handlers.slack.delivery. Exceptions propagate to bolt,
which answers 500 to the processor; the item is then retried when its lease runs out."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from qopi_bot_handlers.slack.blocks import REPLY_VIEW, answer_message, mention_ids, reply_from_view, reply_modal, text_message
from qopi_bot_handlers.slack.events import (
    bot_user_id, command_key, conversation_for, event_team, is_dm, plain_text, thread_key, wanted_event,
)
from qopi_bot.cases import is_staff_user
from qopi_bot.logs import get_logger
from qopi_bot.records import CaseRecord, IncomingMessage
from qopi_bot.service import DialogueService, Loaded
from qopi_bot.settings import Settings
from qopi_bot.store import Store
from qopi_bot.unit import Unit

log = get_logger("handlers.slack.listeners")

USAGE = "Ask me about QOPI Certification, for example: /qopi We scored 81% on the certification pathway in Fall 2025. Can we apply?"
REFUSAL = "Only QCP staff can act on cases. If you think you should be able to, ask an admin to add you to QOPI_STAFF_USERS."


@dataclass
class SlackDeps:
    settings: Settings
    store: Store
    dialogue: DialogueService
    notify_outbox: Callable[[], None]  # wake the dispatcher: something was queued


def unit_of(context: AsyncBoltContext | None) -> Unit | None:
    """The item's unit of work (handlers.slack.inbox puts it in bolt's context): the
    listener's writes join it and commit with the item's inbox finish."""
    unit = context.get("unit") if context is not None else None
    return unit if isinstance(unit, Unit) else None


class Listeners:
    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps
        self.store = deps.store

    # ------------------------------------------------------------ events
    async def on_app_mention(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if not wanted_event(event, bot_user_id(body)):
            return
        thread_ts = event.get("thread_ts")
        if thread_ts and (case := await self.store.find_case_by_staff_thread(event["channel"], thread_ts)):
            await self._staff_thread_message(case, body, event)
            return
        await self._answer_event(body, event, unit_of(context))

    async def on_message(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if not wanted_event(event, bot_user_id(body)):
            return  # the web layer filters too; this keeps replays of old inbox items safe
        if is_dm(event):
            await self._answer_event(body, event, unit_of(context))
            return
        channel, thread_ts = event["channel"], event["thread_ts"]
        if case := await self.store.find_case_by_staff_thread(channel, thread_ts):
            await self._staff_thread_message(case, body, event)
            return
        # Continue only threads the bot is part of: those it has a conversation for.
        if await self.store.load_state(thread_key(event_team(body), channel, thread_ts)) is None:
            return
        await self._answer_event(body, event, unit_of(context))

    async def _answer_event(self, body: dict[str, Any], event: dict[str, Any], unit: Unit | None) -> None:
        team, channel, user = event_team(body), event["channel"], event["user"]
        # One answer per Slack message (channel + ts), whichever way it reached us: as a
        # live event, or read back from history by the catch-up after an outage.
        key, reply_thread = conversation_for(body, event)
        loaded: Loaded | None = None
        if event.get("ts"):
            message_key, event_id = f"slack-msg:{channel}:{event['ts']}", str(body["event_id"])
            if unit is not None:  # the claim check and the conversation's state in one read
                may, state = await self.store.claim_message_and_state(message_key, event_id, key, unit=unit)
                loaded = Loaded(state)
            else:
                may = await self.store.claim_message(message_key, event_id)
            if not may:
                log.info("slack.message_already_answered", external_id=event_id)
                return
        text = plain_text(str(event.get("text") or ""), bot_user_id(body))
        origin = {"channel": channel, "thread_ts": reply_thread, "user": user, "team": team}
        event_id = str(body["event_id"])
        fallback, blocks = await self._dialogue(key, text, user, origin, event_id, unit, loaded)
        await self.store.outbox_put("slack", "answer", {"channel": channel, "thread_ts": reply_thread,
                                                        "text": fallback, "blocks": blocks},
                                    dedupe_key=f"slack-answer:{event_id}", unit=unit)
        if unit is None:
            self.deps.notify_outbox()

    async def _dialogue(self, key: str, text: str, user: str, origin: dict[str, Any], event_key: str,
                        unit: Unit | None, loaded: Loaded | None = None) -> tuple[str, list[dict[str, Any]]]:
        msg = IncomingMessage(conversation_key=key, channel="slack", text=text, today=dt.date.today(), user=user,
                              origin=origin)
        answer = await self.deps.dialogue.handle(msg, event_key=event_key, unit=unit, loaded=loaded)
        if answer.case_id:  # the case service queued staff messages of its own
            self.deps.notify_outbox()
        log.info("slack.answered", event_key=event_key, intent=answer.intent.value if answer.intent else None,
                 outcome=answer.outcome.value, verdict=answer.verdict.value if answer.verdict else None,
                 rules=answer.rules, case=answer.case_id)
        return answer_message(answer)

    async def _staff_thread_message(self, case: CaseRecord, body: dict[str, Any], event: dict[str, Any]) -> None:
        """A message in a case's staff thread: a staff answer is relayed, anything else stays there."""
        user, event_id = event["user"], str(body["event_id"])
        if not is_staff_user(self.deps.settings, user):
            log.info("slack.case_thread_remark_not_relayed", case=case.id, user=user)
            return
        text = plain_text(str(event.get("text") or ""), bot_user_id(body))
        ok, message = await self.deps.dialogue.cases.reply(case.id, who=user, text=text, via="slack", event_key=event_id)
        log.info("slack.case_reply", case=case.id, user=user, relayed=ok)
        if not ok:
            await self._ephemeral(event["channel"], user, message, f"slack-reply-result:{event_id}")
        self.deps.notify_outbox()

    # ------------------------------------------------------------ /qopi
    async def on_command(self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()  # the HTTP ack already went out; bolt wants the call anyway
        user, channel, team = command["user_id"], command["channel_id"], command["team_id"]
        unit = unit_of(context)
        trigger = str(command.get("trigger_id") or command.get("response_url") or dt.datetime.now().timestamp())
        text = plain_text(str(command.get("text") or ""))
        if not text:
            fallback, blocks = text_message(USAGE)
        elif text.strip().lower() == "console":
            fallback, blocks = text_message(await self._console_link(user, trigger))
        else:
            origin = {"channel": channel, "thread_ts": None, "user": user, "team": team, "via": "command"}
            fallback, blocks = await self._dialogue(command_key(team, channel, user), text, user, origin,
                                                    f"command:{trigger}", unit)
        await self.store.outbox_put("slack", "command_reply", {"response_url": command.get("response_url"), "channel": channel,
                                                               "user": user, "text": fallback, "blocks": blocks},
                                    dedupe_key=f"slack-command:{trigger}", unit=unit)
        if unit is None:
            self.deps.notify_outbox()

    async def _console_link(self, user: str, trigger: str) -> str:
        """`/qopi console`: a one-time sign-in link, sent to staff in a DM (made when it is
        sent, so no usable link sits in the outbox)."""
        if not is_staff_user(self.deps.settings, user):
            return "The staff console is for QCP staff only (QOPI_STAFF_USERS)."
        await self.store.outbox_put("slack", "console_link", {"user": user}, dedupe_key=f"console-link:{trigger}")
        return "I've sent you a sign-in link to the staff console in a DM. It works once, for 15 minutes."

    # ------------------------------------------------------------ staff buttons
    async def on_case_claim(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await self._case_action(ack, body, action, "claim")

    async def on_case_resolve(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await self._case_action(ack, body, action, "resolve")

    async def on_case_reply(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """The Reply button opens a form; its submission is relayed like a thread reply."""
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
        click, label = str(body.get("trigger_id") or action.get("action_ts")), str(action.get("value") or "")
        if not is_staff_user(self.deps.settings, user):
            log.info("slack.case_action_refused", case=label, user=user, action="reply")
            await self._ephemeral(channel, user, REFUSAL, f"slack-refusal:{click}")
            return
        await self.store.outbox_put("slack", "views_open", {"trigger_id": body.get("trigger_id"), "view": reply_modal(label),
                                                            "channel": channel, "user": user, "case": label},
                                    dedupe_key=f"slack-reply-form:{click}")
        self.deps.notify_outbox()

    async def on_reply_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()  # closes the form; the answer goes out through the outbox
        user, label = str((body.get("user") or {}).get("id") or ""), str(view.get("private_metadata") or "")
        if not is_staff_user(self.deps.settings, user):
            log.info("slack.case_action_refused", case=label, user=user, action="reply_submit")
            return
        key = f"view:{view.get('id')}:{view.get('hash') or ''}"
        ok, _message = await self.deps.dialogue.cases.reply(label, who=user, text=reply_from_view(view), via="slack",
                                                           event_key=key)
        log.info("slack.case_reply", case=label, user=user, relayed=ok, via="form")
        self.deps.notify_outbox()

    async def _case_action(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], verb: str) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
        click = str(body.get("trigger_id") or action.get("action_ts"))
        label = str(action.get("value") or "")
        if not is_staff_user(self.deps.settings, user):
            log.info("slack.case_action_refused", case=label, user=user, action=verb)
            await self._ephemeral(channel, user, REFUSAL, f"slack-refusal:{click}")
            return
        cases = self.deps.dialogue.cases
        ok, message = await (cases.claim(label, who=user) if verb == "claim" else cases.resolve(label, who=user))
        log.info("slack.case_action", case=label, user=user, action=verb, changed=ok)
        if not ok:  # e.g. someone else claimed it a moment earlier: tell only the clicker
            await self._ephemeral(channel, user, mention_ids(message), f"slack-action-result:{click}")
        self.deps.notify_outbox()

    async def _ephemeral(self, channel: str, user: str, text: str, dedupe_key: str) -> None:
        if channel and user:
            await self.store.outbox_put("slack", "ephemeral", {"channel": channel, "user": user, "text": text},
                                        dedupe_key=dedupe_key)
            self.deps.notify_outbox()


async def _on_error(error: Exception) -> None:
    # Bolt's default handler logs the whole exception, which can quote the message text.
    log.error("slack.listener_failed", error=type(error).__name__)


def register(app: AsyncApp, deps: SlackDeps) -> Listeners:
    listeners = Listeners(deps)
    app.event("app_mention")(listeners.on_app_mention)
    app.event("message")(listeners.on_message)
    app.command(re.compile(r"^/.+"))(listeners.on_command)  # the app has one command (/qopi, or a renamed copy)
    app.action("case_claim")(listeners.on_case_claim)
    app.action("case_resolve")(listeners.on_case_resolve)
    app.action("case_reply")(listeners.on_case_reply)
    app.view(REPLY_VIEW)(listeners.on_reply_submitted)
    app.error(_on_error)
    return listeners
