"""The intent model for a knowledge base: the stored one when it matches the examples,
otherwise trained now (and `qopi-bot knowledge check` should be run to store it)."""

from __future__ import annotations

import logging
from pathlib import Path

from qopi_bot.core.kb import Example, Knowledge
from qopi_bot.knowledge import INTENT_MODEL_FILE
from qopi_bot.understanding.classifier import IntentModel, examples_hash, train
from qopi_bot.understanding.normalize import normalize

log = logging.getLogger(__name__)
_CACHE: dict[str, IntentModel] = {}
# Knowledge objects live for the process; remember each one's model so a message never
# re-hashes the examples.
_BY_KB: dict[int, tuple[Knowledge, IntentModel]] = {}


def training_examples(kb: Knowledge) -> list[Example]:
    # The model sees text the way `understand` does: normalized.
    return [Example(intent=e.intent, text=normalize(e.text)) for e in kb.examples]


def stored_model(kb: Knowledge) -> IntentModel | None:
    """The model in knowledge/intent-model.json, if it was trained on these very examples."""
    if not kb.intent_model_json:
        return None
    try:
        model = IntentModel.from_json(kb.intent_model_json)
    except (ValueError, KeyError) as exc:
        log.warning("intent model file unreadable (%s); retraining", exc)
        return None
    return model


def model_for(kb: Knowledge) -> IntentModel:
    known = _BY_KB.get(id(kb))
    if known is not None and known[0] is kb:
        return known[1]
    model = _model_for_examples(kb)
    _BY_KB[id(kb)] = (kb, model)
    return model


def _model_for_examples(kb: Knowledge) -> IntentModel:
    # The hash is over the examples as staff wrote them: normalizing 600+ messages at every
    # start-up would cost more than loading the model.
    key = examples_hash(kb.examples)
    model = _CACHE.get(key)
    if model is not None:
        return model
    model = stored_model(kb)
    if model is None or model.source_hash != key:
        log.warning("the stored intent model does not match knowledge/examples; training it now "
                    "(run `qopi-bot knowledge check` to store it)")
        model = train(training_examples(kb), source_hash=key)
    _CACHE[key] = model
    return model


def store_model(kb: Knowledge, directory: Path) -> str:
    """Train the model if the stored one is stale and write it next to the examples.

    Returns a line for `qopi-bot knowledge check` to print."""
    key = examples_hash(kb.examples)
    stored = stored_model(kb)
    count = f"{len(kb.examples)} examples, {len({e.intent for e in kb.examples})} intents"
    if stored is not None and stored.source_hash == key:
        return f"intent model up to date ({count})"
    model = train(training_examples(kb), source_hash=key)
    target = directory / INTENT_MODEL_FILE
    try:
        target.write_text(model.to_json(), encoding="utf-8")
    except OSError as exc:
        return f"intent model trained ({count}) but not saved to {target}: {exc.strerror}; answers will train it at start-up"
    _CACHE[key] = model
    return f"intent model retrained and saved to {target} ({count})"
