"""The dialogue service every channel calls: load the thread, plan, open or continue the
staff case, compose, save. Channels stay thin: parse, call `handle`, send."""

from __future__ import annotations

import uuid

from qopi_bot.cases import CaseService
from qopi_bot.core.kb import Knowledge
from qopi_bot.dialogue import ConversationState, compose, plan
from qopi_bot.models import Answer
from qopi_bot.records import IncomingMessage, case_label, parse_case_label
from qopi_bot.settings import Settings
from qopi_bot.store import Store


class DialogueService:
    def __init__(self, store: Store, kb: Knowledge, settings: Settings) -> None:
        self.store = store
        self.kb = kb
        self.settings = settings
        self.cases = CaseService(store, settings)

    async def handle(self, msg: IncomingMessage, event_key: str | None = None) -> Answer:
        event_key = event_key or uuid.uuid4().hex
        state = await self.store.load_state(msg.conversation_key) or ConversationState()
        p = plan(state, msg.text, msg.today, self.kb)
        new_state = p.state
        case_number = parse_case_label(new_state.case_id) if new_state.case_id else None

        if p.open_case is not None and case_number is None:
            draft = compose(p, self.kb, case_id=None)
            case = await self.cases.open(msg, p.open_case.reason,
                                         facts=new_state.facts.model_dump(mode="json"),
                                         decision={"rules": draft.rules, "verdict": draft.verdict,
                                                   "intent": draft.intent.value, "text": draft.text})
            case_number = case.number
            new_state.case_id, new_state.case_open = case.id, True
        elif case_number is not None and msg.text.strip():
            # Every later practice message in a thread with a case reaches the case.
            await self.cases.practice_message(case_number, msg, event_key)
            if p.open_case is not None:
                p.open_case = None
                p.to_case = True

        answer = compose(p, self.kb, case_id=case_label(case_number) if case_number is not None else None)
        if msg.text.strip():
            await self.store.add_message(msg.conversation_key, "practice", msg.text, author=msg.user)
        await self.store.add_message(msg.conversation_key, "bot", answer.text)
        await self.store.save_state(msg.conversation_key, msg.channel, new_state)
        return answer
