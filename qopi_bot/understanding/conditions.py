"""Failed or pending conditions an eligibility message states in words no pattern foresaw
("we did the reg QOPI track", "our abstractor quit halfway"), read by a model learned from
knowledge/statements/conditions.yaml (staff list a message under the conditions it states).

Patterns in extraction.py stay first. The model is asked only about facts they left unknown,
only for a message that asks about eligibility, and its reading is used only above a score at
which it was right on whole blind sets it had not seen (leave-one-set-out). A condition it
misses leaves the fact unknown, as before; one it reads is shown in the answer's "I read"
line, so a misread is visible at once. Every condition it reads fails or defers eligibility:
a missed one would give a confident wrong "yes", the worst answer a help desk can give."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from qopi_bot.core.kb import ConditionExample, Example, Knowledge
from qopi_bot.knowledge import CONDITION_FACTS, CONDITION_MODEL_FILE, NO_CONDITION
from qopi_bot.understanding.classifier import IntentModel, examples_hash, train_multilabel
from qopi_bot.understanding.normalize import normalize

log = logging.getLogger(__name__)

# Leave-one-blind-set-out over 1,175 eligibility messages (tools: bench/condition_cv.py): at this
# score, 97-100% of the conditions read were stated (76-84% of those stated were found).
MIN_SCORE = 0.3
MIN_WORDS = 6  # "no" or "not yet" alone is a reply to the bot's question: the thread reads those

_LoadedModel = IntentModel | None
# Models known for a Knowledge object as loaded; the start-up cache hands over a loader instead,
# because most `ask` runs never need this model and decoding it costs milliseconds.
_BY_KB: dict[int, tuple[Knowledge, _LoadedModel | Callable[[], _LoadedModel]]] = {}


def source_hash(examples: tuple[ConditionExample, ...]) -> str:
    return examples_hash([Example(intent="|".join(e.states) or NO_CONDITION, text=e.text) for e in examples])


def fit(examples: tuple[ConditionExample, ...]) -> IntentModel:
    return train_multilabel([normalize(e.text) for e in examples], [set(e.states) for e in examples],
                            list(CONDITION_FACTS), source_hash(examples))


def remember(kb: Knowledge, loader: Callable[[], _LoadedModel]) -> None:
    _BY_KB[id(kb)] = (kb, loader)


def stored_model_json(kb: Knowledge) -> str | None:
    """knowledge/condition-model.json as loaded, when it was trained on these examples."""
    raw = kb.condition_model_json
    if raw is None or not kb.condition_examples:
        return None
    try:
        stored = IntentModel.from_json(raw)
    except (ValueError, KeyError):
        return None
    return raw if stored.source_hash == source_hash(kb.condition_examples) else None


def model(kb: Knowledge) -> IntentModel | None:
    known = _BY_KB.get(id(kb))
    if known is None or known[0] is not kb:
        known = _BY_KB[id(kb)] = (kb, lambda: _model_for_examples(kb))
    found = known[1]
    if callable(found):
        found = found()
        _BY_KB[id(kb)] = (kb, found)
    return found


def _model_for_examples(kb: Knowledge) -> IntentModel | None:
    if not kb.condition_examples:
        return None
    raw = stored_model_json(kb)
    if raw is not None:
        return IntentModel.from_json(raw)
    log.warning("the stored condition model does not match knowledge/statements/conditions.yaml; training it now "
                "(run `qopi-bot knowledge check` to store it)")
    return fit(kb.condition_examples)


def read(kb: Knowledge, text: str) -> dict[str, bool]:
    """{fact: False} for each condition a normalized eligibility message clearly states."""
    if len(text.split()) < MIN_WORDS:
        return {}
    m = model(kb)
    if m is None:
        return {}
    return {CONDITION_FACTS[name]: False for name, score in m.scores(text).items()
            if name in CONDITION_FACTS and score > MIN_SCORE}


def store(kb: Knowledge, directory: Path) -> str:
    """Train the model if the stored one is stale and write it; a line for `knowledge check`."""
    if not kb.condition_examples:
        return "no condition examples (knowledge/statements/conditions.yaml): conditions are read by patterns only"
    count = f"{len(kb.condition_examples)} condition examples"
    if stored_model_json(kb) is not None:
        return f"condition model up to date ({count})"
    fitted = fit(kb.condition_examples)
    _BY_KB[id(kb)] = (kb, fitted)
    target = directory / CONDITION_MODEL_FILE
    try:
        target.write_text(fitted.to_json(), encoding="utf-8")
    except OSError as exc:
        return f"condition model trained ({count}) but not saved to {target}: {exc.strerror}; answers will train it at start-up"
    return f"condition model retrained and saved to {target} ({count})"
