"""The reminder side of a conversation turn, run by the dialogue service after it composes
the answer: schedule reminders the practice asked for (once the round is known), replace
them when a new score or round is given, cancel them on "stop the reminders", and say so in
the same answer. Staff cases are not involved: resolving a case leaves reminders alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qopi_bot.core.kb import Knowledge
from qopi_bot.dialogue import Plan
from qopi_bot.models import Answer, ConversationState
from qopi_bot.records import IncomingMessage
from qopi_bot.reminders import cancelled_text, confirmation, lead_times, schedule

if TYPE_CHECKING:
    from qopi_bot.settings import Settings  # annotations only: `ask` never builds the pydantic-settings class
    from qopi_bot.store import Store

NOWHERE = ("Reminders go out in Slack or by email, in the conversation that asks for them; from the command line "
           "there is nowhere to send them.")


def _reachable(msg: IncomingMessage) -> bool:
    o = msg.origin
    return (msg.channel == "slack" and bool(o.get("channel"))) or (msg.channel == "email" and bool(o.get("address")))


async def after_turn(store: Store | Any, settings: Settings, kb: Knowledge, msg: IncomingMessage,
                     old: ConversationState, new: ConversationState, p: Plan, answer: Answer) -> Answer:
    if p.reminder is None and not new.reminders:
        return answer
    if not _reachable(msg):
        if p.reminder == "start":
            new.reminders = False
            answer.text = f"{answer.text}\n\n{NOWHERE}"
        elif p.reminder == "stop":
            answer.text = f"There are no reminders in this conversation to stop. {NOWHERE}"
        return answer
    from qopi_bot.reminder_store import ReminderStore

    reminders = ReminderStore(store)
    if p.reminder == "stop":
        answer.text = cancelled_text(await reminders.cancel(msg.conversation_key))
        return answer
    f_old, f_new = old.facts, new.facts
    changed = old.reminders and (f_old.completed_round, f_old.score) != (f_new.completed_round, f_new.score)
    if p.reminder != "start" and not changed:
        return answer  # reminders already set for these facts; nothing to say
    days = lead_times(settings.reminder_lead_days, new.reminder_days)
    s = schedule(f_new.score, f_new.completed_round, msg.today, kb, days)
    if s.status == "no_round" or s.subject is None:
        if p.reminder == "start":  # the answer asks for the round; this says why it matters here
            answer.text = f"{answer.text}\n\n{confirmation(s, days, kb)}"
        return answer
    items = s.items if s.status in ("scheduled", "waiting") else []
    # A reminder waiting for a close date keeps the extra lead time asked for, for later.
    items = [i.model_copy(update={"days_before": new.reminder_days}) if i.kind == "date_published" else i for i in items]
    replaced = await reminders.replace(msg.conversation_key, msg.channel, msg.origin, s.subject, items)
    answer.text = f"{answer.text}\n\n{confirmation(s, days, kb, replaced if changed else 0)}"
    return answer
