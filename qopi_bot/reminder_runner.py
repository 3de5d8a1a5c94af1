"""Send what is due: the check `qopi-bot reminders run` does once and the web and worker
processes do at least hourly (QOPI_REMINDER_CHECK_SECONDS).

Each check reads the knowledge afresh, so a rounds file that gains a close date releases the
reminders waiting for it, and hands due reminders to the outbox (ReminderStore: exactly
once). The channel dispatchers deliver them like any other reply."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from qopi_bot.core.kb import Knowledge
from qopi_bot.core.validity import score_validity
from qopi_bot.logs import get_logger
from qopi_bot.polling import poll_forever
from qopi_bot.reminder_store import ReminderRecord, ReminderStore
from qopi_bot.reminders import Planned, dated, lead_times, reminder_text
from qopi_bot.settings import Settings
from qopi_bot.store import Store

log = get_logger("qopi_bot.reminders")
Queued = tuple[str, dict[str, Any], str | None]


def outbox_item(row: ReminderRecord, text: str) -> Queued:
    """Where the reminder goes: the conversation that asked (Slack thread or DM, email thread)."""
    o = row.origin
    if row.channel == "email":
        address = str(o["address"])
        return "email", {"to": address, "to_name": o.get("name") or "", "subject": o.get("subject") or "",
                         "in_reply_to": o.get("message_id"), "references": list(o.get("references") or []),
                         "text": text, "conversation_key": row.conversation_key, "reminder": row.id}, address.lower()
    return "slack", {"channel": o["channel"], "thread_ts": o.get("thread_ts"), "user": o.get("user"),
                     "via": o.get("via"), "text": text, "reminder": row.id}, None


class ReminderRunner:
    def __init__(self, store: Store, settings: Settings, knowledge: Callable[[], Knowledge],
                 notify: Callable[[], None] | None = None) -> None:
        self.reminders = ReminderStore(store)
        self.settings = settings
        self.knowledge = knowledge
        self.notify = notify
        self.wake = asyncio.Event()

    async def run_once(self, today: dt.date | None = None) -> int:
        day = today or dt.date.today()
        kb = self.knowledge()
        asked = self.settings.reminder_lead_days

        def render(row: ReminderRecord) -> Queued | None:
            try:
                return outbox_item(row, reminder_text(row.subject, "before_close", row.days_before, day, kb, []))
            except (KeyError, TypeError, ValueError) as exc:  # a row with no thread to go to
                log.error("reminders.undeliverable", reminder=row.id, error=type(exc).__name__)
                return None

        def publish(row: ReminderRecord) -> tuple[Queued, list[Planned]] | None:
            last_day = score_validity(row.subject.completed_round, day, kb).valid_until
            if last_day is None:
                return None
            follow = dated(last_day, day, lead_times(asked, row.days_before))
            text = reminder_text(row.subject, "date_published", None, day, kb, [i.days_before for i in follow if i.days_before])
            try:
                return outbox_item(row, text), follow
            except (KeyError, TypeError, ValueError) as exc:  # no thread to go to: leave it, log it
                log.error("reminders.undeliverable", reminder=row.id, error=type(exc).__name__)
                return None

        sent = await self.reminders.publish_dates(day, publish)
        while True:
            batch = await self.reminders.send_due(day, render)
            sent += batch
            if batch < 50:
                break
        if sent:
            log.info("reminders.queued", count=sent, today=day.isoformat())
            if self.notify is not None:
                self.notify()
        return sent

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Check every QOPI_REMINDER_CHECK_SECONDS until `stop`; a database outage only delays."""
        await poll_forever(self.run_once, stop=stop, wake=self.wake, interval=self.settings.reminder_check_seconds,
                           log=log, event="reminders.check_failed")


def fresh_knowledge(settings: Settings, current: Knowledge) -> Callable[[], Knowledge]:
    """Knowledge read from disk at each check (a published close date takes effect without a
    restart); a folder that fails to load leaves the last good one in force."""
    from qopi_bot.knowledge import KnowledgeError
    from qopi_bot.runtime import load_kb

    last = [current]

    def load() -> Knowledge:
        try:
            last[0] = load_kb(settings)
        except KnowledgeError as exc:
            log.error("reminders.knowledge_refused", error=str(exc)[:200])
        return last[0]
    return load
