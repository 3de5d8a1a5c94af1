"""Facts stated in words no pattern foresaw, read by small models learned from
knowledge/statements/ (Rasa-style: staff add a message under the reading it states).

Patterns in extraction.py stay first: they are precise on the phrasings they know. A
statement model is asked only when they found nothing, and its reading is used only when it
is clearly ahead of the others; otherwise the fact stays unknown and the bot asks for it,
which is the softer miss. Each fact has its own model, stored in
knowledge/statement-model.json by `qopi-bot knowledge check`."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

from qopi_bot.core.kb import Example, Knowledge
from qopi_bot.knowledge import STATEMENT_MODEL_FILE, STATEMENT_READINGS
from qopi_bot.understanding.classifier import IntentModel, Prediction, examples_hash, train
from qopi_bot.understanding.normalize import normalize

log = logging.getLogger(__name__)

# Held-out by whole blind set (leave one set out, 297 messages): 94% of readings right overall,
# 97.5% of those at least this far ahead of the runner-up. Below it the bot asks.
MIN_MARGIN = 0.6
MIN_SCORE = 0.2
MIN_WORDS = 8  # "yes" or "both" alone carries too little for a model; the thread's question decides those

# A message the model may read: it speaks of several sites or of policies.
_ABOUT_SITES = re.compile(r"\b(sites|locations|clinics|offices|campuses|practices|both|polic\w*|procedures|p&ps?|"
                          r"(second|other|new|satellite|main|another) (site|location|clinic|office|campus))\b")

_POLICY_WORDS = re.compile(r"\b(polic\w*|procedures?|p&ps?|protocols?|manuals?|binders?|rule ?books?|playbooks?|sops?|"
                           r"standard operating|same (rules|way)|governance)\b")

_DECODED: dict[tuple[str, str], IntentModel] = {}
# Models known for a Knowledge object as loaded (the start-up cache hands them over decoded, and its
# Knowledge carries no examples to hash).
_BY_KB: dict[int, tuple[Knowledge, dict[str, IntentModel | None]]] = {}
# Loaders the start-up cache hands over: a model is decoded when a message first needs it, since
# most one-off `ask` runs never read a statement.
_LOADERS: dict[int, tuple[Knowledge, dict[str, Callable[[], IntentModel]]]] = {}


def remember(kb: Knowledge, models: dict[str, IntentModel | None]) -> None:
    _BY_KB[id(kb)] = (kb, dict(models))


def remember_lazily(kb: Knowledge, loaders: dict[str, Callable[[], IntentModel]]) -> None:
    _LOADERS[id(kb)] = (kb, dict(loaders))


def stored_models(kb: Knowledge) -> dict[str, IntentModel] | None:
    """Every fact's stored model, when each matches its examples (else None: they train per run)."""
    facts = sorted({e.fact for e in kb.statement_examples})
    out: dict[str, IntentModel] = {}
    for fact in facts:
        raw = _stored(kb).get(fact)
        try:
            found = IntentModel.from_json(raw) if raw is not None else None
        except (ValueError, KeyError):
            found = None
        if found is None or found.source_hash != examples_hash(_examples(kb, fact)):
            return None
        out[fact] = found
    return out


def _examples(kb: Knowledge, fact: str) -> list[Example]:
    return [Example(intent=e.reading, text=e.text) for e in kb.statement_examples if e.fact == fact]


def _stored(kb: Knowledge) -> dict[str, str]:
    if not kb.statement_model_json:
        return {}
    try:
        data = json.loads(kb.statement_model_json)
        return {k: v for k, v in data.get("models", {}).items() if isinstance(v, str)}
    except (ValueError, AttributeError):
        log.warning("statement model file unreadable; retraining")
        return {}


def model(kb: Knowledge, fact: str) -> IntentModel | None:
    """The model for one fact, remembered for this Knowledge: workers read many messages with one
    Knowledge, and hashing its few hundred examples for each one would be wasted work."""
    known_for_kb = _BY_KB.get(id(kb))
    if known_for_kb is None or known_for_kb[0] is not kb:
        lazy = _LOADERS.get(id(kb))
        if lazy is not None and lazy[0] is kb:
            known_for_kb = _BY_KB[id(kb)] = (kb, {fact: load() for fact, load in lazy[1].items()})
        else:
            known_for_kb = _BY_KB[id(kb)] = (kb, {})
    if fact not in known_for_kb[1]:
        known_for_kb[1][fact] = _model_for_examples(kb, fact)
    return known_for_kb[1][fact]


def _model_for_examples(kb: Knowledge, fact: str) -> IntentModel | None:
    """The stored model when it matches the examples, else trained now."""
    examples = _examples(kb, fact)
    if len({e.intent for e in examples}) < 2:
        return None
    key = examples_hash(examples)
    known = _DECODED.get((fact, key))
    if known is not None:
        return known
    found: IntentModel | None = None
    raw = _stored(kb).get(fact)
    if raw is not None:
        try:
            found = IntentModel.from_json(raw)
        except (ValueError, KeyError):
            found = None
    if found is None or found.source_hash != key:
        log.warning("the stored statement model for %s does not match knowledge/statements; training it now "
                    "(run `qopi-bot knowledge check` to store it)", fact)
        found = train([Example(intent=e.intent, text=normalize(e.text)) for e in examples], source_hash=key)
    _DECODED[(fact, key)] = found
    return found


def read(kb: Knowledge, fact: str, text: str) -> tuple[bool | None, Prediction | None]:
    """(the fact's value, the prediction) for a normalized message; None when not clearly stated."""
    if len(text.split()) < MIN_WORDS or not _ABOUT_SITES.search(text):
        return None, None
    m = model(kb, fact)
    if m is None:
        return None, None
    p = m.predict(text)
    value = STATEMENT_READINGS[fact].get(p.intent)
    if value is None or p.margin < MIN_MARGIN or p.score < MIN_SCORE:
        return None, p
    if value is True and not _POLICY_WORDS.search(text):
        return None, p  # a common EMR and tax ID say nothing of the policies, which decide (contract: Multi-site)
    return value, p


def store(kb: Knowledge, directory: Path) -> str:
    """Train every fact's model if the stored one is stale and write them; a line for `knowledge check`."""
    facts = sorted({e.fact for e in kb.statement_examples})
    if not facts:
        return "no statement examples (knowledge/statements/): facts are read by patterns only"
    stored = _stored(kb)
    models: dict[str, str] = {}
    retrained = []
    for fact in facts:
        examples = _examples(kb, fact)
        key = examples_hash(examples)
        raw = stored.get(fact)
        if raw is not None and json.loads(raw).get("source_hash") == key:
            models[fact] = raw
            continue
        fitted = train([Example(intent=e.intent, text=normalize(e.text)) for e in examples], source_hash=key)
        _DECODED[(fact, key)] = fitted
        models[fact] = fitted.to_json()
        retrained.append(fact)
    count = f"{len(kb.statement_examples)} statement examples for {', '.join(facts)}"
    if not retrained and set(stored) == set(models):
        return f"statement models up to date ({count})"
    target = directory / STATEMENT_MODEL_FILE
    try:
        target.write_text(json.dumps({"models": models}, separators=(",", ":")), encoding="utf-8")
    except OSError as exc:
        return f"statement models trained ({count}) but not saved to {target}: {exc.strerror}; answers will train them at start-up"
    return f"statement models retrained and saved to {target} ({count})"
