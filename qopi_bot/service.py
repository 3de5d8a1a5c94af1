"""The dialogue service every channel calls: load the thread, plan, open or continue the
staff case, compose, save. Channels stay thin: parse, call `handle`, send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qopi_bot import reminder_turn
from qopi_bot.audit import answer_record
from qopi_bot.cases import CaseService
from qopi_bot.core.kb import Knowledge
from qopi_bot.dialogue import compose, plan
from qopi_bot.models import ConversationState
from qopi_bot.models import Answer
from qopi_bot.records import IncomingMessage, case_label, parse_case_label
from qopi_bot.memory import MemoryConversations

if TYPE_CHECKING:
    from qopi_bot.settings import Settings  # annotations only: `ask` never builds the pydantic-settings class
    from qopi_bot.store import Store
    from qopi_bot.unit import Unit


@dataclass(frozen=True)
class Loaded:
    """A conversation's stored state (None: no turn stored yet), read by the caller."""

    state: ConversationState | None


class DialogueService:
    def __init__(self, store: Store | Any, kb: Knowledge, settings: Settings,
                 memory: MemoryConversations | None = None, ephemeral: Callable[[str], bool] | None = None) -> None:
        self.store = store
        self.kb = kb
        self.settings = settings
        self.cases = CaseService(store, settings)
        # Conversations that can never be resumed (a CLI run's threads) stay in memory.
        self.memory = memory
        self.ephemeral = ephemeral or (lambda _key: False)

    def _conversations(self, key: str) -> Any:
        return self.memory if self.memory is not None and self.ephemeral(key) else self.store

    async def handle(self, msg: IncomingMessage, event_key: str | None = None, *, unit: Unit | None = None,
                     loaded: Loaded | None = None) -> Answer:
        """Answer one message. With `unit`, the turn's writes (state, transcript) join it and
        are committed by the caller together with the rest of the item's writes. `loaded`:
        the conversation's state as the caller just read it from the store, in the same read
        as its other lookups (one thread hop instead of two)."""
        event_key = event_key or uuid.uuid4().hex
        conversations = self._conversations(msg.conversation_key)
        if conversations is not self.store:
            unit = None  # in-memory conversations are not part of a database transaction
            loaded = None
        stored = loaded.state if loaded is not None else await conversations.load_state(msg.conversation_key)
        state = stored or ConversationState()
        p = plan(state, msg.text, msg.today, self.kb)
        new_state = p.state
        case_number = parse_case_label(new_state.case_id) if new_state.case_id else None

        if p.open_case is not None and case_number is None:
            if unit:  # rare: commit what the item wrote so far (its claim) before the case exists
                await self.store.apply(unit)
            draft = compose(p, self.kb, case_id=None)
            case = await self.cases.open(msg, p.open_case.reason,
                                         facts=new_state.facts.model_dump(mode="json"),
                                         decision={"rules": draft.rules, "verdict": draft.verdict,
                                                   "intent": draft.intent.value, "text": draft.text})
            case_number = case.number
            new_state.case_id = case.id
            if conversations is not self.store:  # staff need the thread so far in the database
                for role, author, text in await conversations.transcript(msg.conversation_key):
                    await self.store.add_message(msg.conversation_key, role, text, author=author)
        elif case_number is not None and msg.text.strip():
            # Every later practice message in a thread with a case reaches the case.
            await self.cases.practice_message(case_number, msg, event_key)
            if p.open_case is not None:
                p.open_case = None
                p.to_case = True

        answer = compose(p, self.kb, case_id=case_label(case_number) if case_number is not None else None)
        answer = await reminder_turn.after_turn(self.store, self.settings, self.kb, msg, state, new_state, p, answer)
        lines: list[tuple[str, str | None, str]] = [("practice", msg.user, msg.text)] if msg.text.strip() else []
        lines.append(("bot", None, answer.text))
        record = answer_record(msg, answer, p, self.kb)
        if unit is not None:
            await self.store.save_turn(msg.conversation_key, msg.channel, new_state, lines, answer=record, unit=unit)
        else:
            await conversations.save_turn(msg.conversation_key, msg.channel, new_state, lines, answer=record)
        if case_number is not None and conversations is not self.store:
            for role, author, text in lines:
                await self.store.add_message(msg.conversation_key, role, text, author=author)
        return answer
