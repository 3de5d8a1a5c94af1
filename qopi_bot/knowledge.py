"""Load and validate knowledge/*.yaml into typed objects.

Staff edit these files by hand, so every error names the file and the entry and says how
to fix it; a traceback is never the message."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from functools import lru_cache
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from qopi_bot.models import RuleCitation

from qopi_bot.core.kb import (
    MEASURE_COUNT, RULE_IDS, STANDARD_COUNT, Contacts, Example, Fact, Knowledge, Measure, Module, Round, Rule,
    StandardDomain, StatementExample, Unpublished, ConditionExample,
)
from qopi_bot.models import Intent

INTENT_MODEL_FILE = "intent-model.json"
STATEMENT_MODEL_FILE = "statement-model.json"
STATEMENTS_DIR = "statements"
# The facts a statement model may read, and the readings each one has (reading -> fact value).
STATEMENT_READINGS: dict[str, dict[str, bool | None]] = {
    "same_policies": {"shared": True, "separate": False, "unstated": None},
}
# The conditions an eligibility message may state in words no pattern foresaw
# (knowledge/statements/conditions.yaml), and the fact each one sets: all of them fail or defer
# eligibility, so each sets its fact to False ("not done", "not yet").
CONDITIONS_FILE = "conditions.yaml"
CONDITION_MODEL_FILE = "condition-model.json"
CONDITION_FACTS: dict[str, str] = {
    "no_round": "participated_round",
    "abstraction_incomplete": "abstraction_complete",
    "other_track": "pathway",
    "sampling_not_followed": "sampling_followed",
    "charts_left_out": "charts_pool_complete",
    "report_pending": "report_received",
}
NO_CONDITION = "none"
FACTS_FILE = "facts.yaml"
# An amount of money in a fact's answer: the program publishes no fee, so none is ever stated.
_MONEY = re.compile(r"[$€£]\s?\d|\b\d[\d,.]*\s?(?:usd|dollars?|eur)\b|\b(?:usd|us\$)\s?\d", re.I)
EXAMPLES_DIR = "examples"

class KnowledgeError(Exception):
    """A knowledge file is missing or wrong; the message names the file and entry."""


def knowledge_dir(configured: str = "") -> Path:
    """The knowledge folder in use: QOPI_KNOWLEDGE_DIR when set, else the packaged one."""
    return Path(configured) if configured else _data_dir()


def _data_dir() -> Path:
    """knowledge/ in the source tree, or the copy shipped in the wheel."""
    return Path(str(importlib.resources.files("qopi_bot_knowledge")))


@lru_cache(maxsize=1)
def _plain_loader() -> Any:
    """A SafeLoader that leaves dates as text, so pydantic reports an impossible date with its
    round and key. Built on first use: `ask` usually takes its knowledge from the start-up cache
    and then never imports yaml."""
    import yaml

    class PlainLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    PlainLoader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return PlainLoader


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(f"{path}: file not found") from None
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_plain_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise KnowledgeError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _entries(path: Path, data: Any, key: str) -> list[Any]:
    if not isinstance(data, dict) or key not in data:
        raise KnowledgeError(f"{path}: expected a top-level `{key}:` list")
    items = data[key]
    if not isinstance(items, list):
        raise KnowledgeError(f"{path}: `{key}` must be a list")
    return items


def _parse(path: Path, model: type[BaseModel], raw: Any, label: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path}: {label}: {_explain(exc)}") from None


def load_rounds(path: Path) -> tuple[Round, ...]:
    data = _read_yaml(path)
    rounds: list[Round] = []
    seen: dict[tuple[str, int], int] = {}
    for index, raw in enumerate(_entries(path, data, "rounds"), start=1):
        label = f"round #{index}"
        if isinstance(raw, dict) and "season" in raw and "year" in raw:
            label += f" ({raw['season']} {raw['year']})"
        if isinstance(raw, dict) and isinstance(raw.get("season"), str):
            raw = {**raw, "season": raw["season"].strip().lower()}
        rnd = _parse(path, Round, raw, label)
        key = (rnd.season, rnd.year)
        if key in seen:
            raise KnowledgeError(f"{path}: {label}: duplicate of round #{seen[key]}")
        seen[key] = index
        rounds.append(rnd)
    rounds.sort(key=lambda r: r.ref.order_key())
    for earlier, later in zip(rounds, rounds[1:]):
        if earlier.closes and later.opens and later.opens <= earlier.closes:
            raise KnowledgeError(
                f"{path}: {later.ref.label()} opens {later.opens}, before {earlier.ref.label()} closes {earlier.closes}"
            )
    return tuple(rounds)


def _load_threshold(path: Path, data: Any, rules: dict[str, Rule]) -> float:
    """`score_threshold:` in rules.yaml, a percent the ELIG-SCORE quote itself states."""
    value = data.get("score_threshold") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
        raise KnowledgeError(f"{path}: `score_threshold:` must be the passing Overall Quality Score in percent "
                             f"(a number above 0 and at most 100, e.g. 75); found {value!r}")
    said = f"{float(value):g}%"
    if "ELIG-SCORE" in rules and said not in _flatten(rules["ELIG-SCORE"].source):
        raise KnowledgeError(f"{path}: score_threshold {value} does not match the ELIG-SCORE source quote, which does not "
                             f"say {said}; change both together when the program's text changes")
    return float(value)


def _load_rules(path: Path, source_text: str) -> tuple[dict[str, Rule], float]:
    rules: dict[str, Rule] = {}
    flat_source = _flatten(source_text)
    data = _read_yaml(path)
    for index, raw in enumerate(_entries(path, data, "rules"), start=1):
        label = f"rule #{index}" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        rule = _parse(path, Rule, raw, label)
        if rule.id in rules:
            raise KnowledgeError(f"{path}: {label}: duplicate rule ID")
        if _flatten(rule.source) not in flat_source:
            raise KnowledgeError(f"{path}: {label}: `source` is not verbatim program text; copy it exactly")
        rules[rule.id] = rule
    undefined = [rid for rid in RULE_IDS if rid not in rules]
    if undefined:
        raise KnowledgeError(f"{path}: rule IDs referenced by the contract but undefined: {', '.join(undefined)}")
    return rules, _load_threshold(path, data, rules)


def load_examples(directory: Path) -> tuple[Example, ...]:
    """knowledge/examples/*.yaml: `intent:` and a list of `examples:` messages, one file per intent.

    A message listed under two intents would teach the model both, so it is refused."""
    known = {i.value for i in Intent}
    examples: list[Example] = []
    owner: dict[str, Path] = {}
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise KnowledgeError(f"{directory}: no example files; each intent needs a file with example messages")
    for path in files:
        data = _read_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("intent"), str):
            raise KnowledgeError(f"{path}: expected `intent:` (one of {', '.join(sorted(known))}) and `examples:`")
        intent = data["intent"].strip()
        if intent not in known:
            raise KnowledgeError(f"{path}: unknown intent `{intent}`; use one of {', '.join(sorted(known))}")
        for index, text in enumerate(_entries(path, data, "examples"), start=1):
            if not isinstance(text, str) or not text.strip():
                raise KnowledgeError(f"{path}: example #{index} must be a non-empty line of text")
            key = " ".join(text.lower().split())
            if key in owner:
                raise KnowledgeError(f"{path}: example #{index} {text.strip()[:60]!r} is also listed in {owner[key].name}; "
                                     "keep it under the one intent it asks")
            owner[key] = path
            examples.append(Example(intent=intent, text=text.strip()))
    return tuple(examples)


def _listed_messages(path: Path, name: str, texts: object) -> Iterator[tuple[int, str, str]]:
    """(number, message, key) for each message listed under `name:`; the key compares messages
    whatever their case and spacing."""
    if not isinstance(texts, list):
        raise KnowledgeError(f"{path}: `{name}:` must be a list of messages")
    for index, text in enumerate(texts, start=1):
        if not isinstance(text, str) or not text.strip():
            raise KnowledgeError(f"{path}: {name} message #{index} must be a non-empty line of text")
        yield index, text.strip(), " ".join(text.lower().split())


def load_statement_examples(directory: Path) -> tuple[StatementExample, ...]:
    """knowledge/statements/*.yaml (optional): `fact:` and `readings:`, a list of messages per reading.

    A message listed under two readings of one fact would teach both, so it is refused."""
    if not directory.is_dir():
        return ()
    found: list[StatementExample] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == CONDITIONS_FILE:
            continue  # several facts per message: load_condition_examples reads it
        data = _read_yaml(path)
        fact = data.get("fact") if isinstance(data, dict) else None
        if fact not in STATEMENT_READINGS:
            raise KnowledgeError(f"{path}: expected `fact:` (one of {', '.join(sorted(STATEMENT_READINGS))}) and `readings:`")
        readings = data.get("readings")
        allowed = STATEMENT_READINGS[fact]
        if not isinstance(readings, dict) or not readings:
            raise KnowledgeError(f"{path}: `readings:` must map each reading ({', '.join(allowed)}) to a list of messages")
        owner: dict[str, str] = {}
        for reading, texts in readings.items():
            if reading not in allowed:
                raise KnowledgeError(f"{path}: unknown reading `{reading}` for {fact}; use one of {', '.join(allowed)}")
            for index, text, key in _listed_messages(path, reading, texts):
                if key in owner and owner[key] != reading:
                    raise KnowledgeError(f"{path}: {reading} message #{index} {text[:60]!r} is also listed under "
                                         f"{owner[key]}; keep it under the one reading it states")
                owner[key] = reading
                found.append(StatementExample(fact=fact, reading=reading, text=text))
    return tuple(found)


def load_condition_examples(path: Path) -> tuple[ConditionExample, ...]:
    """knowledge/statements/conditions.yaml (optional): `conditions:` maps each condition name (and
    `none`) to the messages that state it. A message stating two conditions is listed under both;
    one listed under `none` and under a condition would teach both, so it is refused."""
    if not path.is_file():
        return ()
    data = _read_yaml(path)
    groups = data.get("conditions") if isinstance(data, dict) else None
    names = [NO_CONDITION, *CONDITION_FACTS]
    if not isinstance(groups, dict) or not groups:
        raise KnowledgeError(f"{path}: expected `conditions:` mapping each of {', '.join(names)} to a list of messages")
    states: dict[str, set[str]] = {}
    first_text: dict[str, str] = {}
    for name, texts in groups.items():
        if name not in names:
            raise KnowledgeError(f"{path}: unknown condition `{name}`; use one of {', '.join(names)}")
        for index, text, key in _listed_messages(path, name, texts):
            listed = states.setdefault(key, set())
            if (name == NO_CONDITION and listed) or NO_CONDITION in listed:
                raise KnowledgeError(f"{path}: {name} message #{index} {text[:60]!r} is listed under `none` and "
                                     "under a condition; keep it under the conditions it states")
            listed.add(name)
            first_text.setdefault(key, text)
    return tuple(ConditionExample(text=first_text[key], states=tuple(sorted(s - {NO_CONDITION})))
                 for key, s in states.items())


def load_facts(path: Path, unpublished: tuple[Unpublished, ...]) -> tuple[Fact, ...]:
    """knowledge/facts.yaml (optional): facts beyond the eligibility page, each with its sources."""
    if not path.is_file():
        return ()
    known = {u.id for u in unpublished}
    facts: list[Fact] = []
    for index, raw in enumerate(_entries(path, _read_yaml(path), "facts"), start=1):
        label = f"fact #{index}" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        fact = _parse(path, Fact, raw, label)
        if fact.id == "fee" or _MONEY.search(fact.answer):
            raise KnowledgeError(f"{path}: {label}: states a fee or an amount of money; the program publishes no fee, "
                                 "so the bot never states one (leave `fee` unanswered in answers.yaml)")
        if fact.id in {f.id for f in facts}:
            raise KnowledgeError(f"{path}: {label}: duplicate id")
        if fact.id not in known and not fact.keywords:
            raise KnowledgeError(f"{path}: {label}: a new topic needs `keywords` (or use an answers.yaml id: "
                                 f"{', '.join(sorted(known))})")
        facts.append(fact)
    return tuple(facts)


def with_facts(unpublished: tuple[Unpublished, ...], facts: tuple[Fact, ...]) -> tuple[Unpublished, ...]:
    """The topics the understanding recognises: answers.yaml's, answered by a fact where one
    exists (with its source), then the facts' new topics."""
    by_id = {f.id: f for f in facts}
    out = [u.model_copy(update={"answer": by_id[u.id].text(), "keywords": [*u.keywords, *by_id[u.id].keywords]})
           if u.id in by_id else u for u in unpublished]
    known = {u.id for u in unpublished}
    out += [Unpublished(id=f.id, keywords=f.keywords, topic=f.topic, answer=f.text()) for f in facts if f.id not in known]
    return tuple(out)


def _flatten(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def load_knowledge(directory: Path | None = None, rounds_file: Path | None = None) -> Knowledge:
    """Read and validate every knowledge file; raise KnowledgeError with a fixable message."""
    base = directory or _data_dir()
    source_path = base / "source" / "qcp-eligibility.txt"
    try:
        source_text = source_path.read_text(encoding="utf-8")
    except OSError:
        raise KnowledgeError(f"{source_path}: the program's source text is missing") from None
    rules, score_threshold = _load_rules(base / "rules.yaml", source_text)
    rounds = load_rounds(rounds_file or base / "rounds.yaml")

    mod_path = base / "modules.yaml"
    modules = tuple(_parse(mod_path, Module, raw, f"module #{i}")
                    for i, raw in enumerate(_entries(mod_path, _read_yaml(mod_path), "modules"), start=1))

    meas_path = base / "measures.yaml"
    measures = tuple(_parse(meas_path, Measure, raw, f"measure #{i}")
                     for i, raw in enumerate(_entries(meas_path, _read_yaml(meas_path), "measures"), start=1))
    if len(measures) != MEASURE_COUNT:
        raise KnowledgeError(f"{meas_path}: lists {len(measures)} measures; the program has {MEASURE_COUNT}")
    numbers = [m.number for m in measures]
    if len(set(numbers)) != len(numbers):
        raise KnowledgeError(f"{meas_path}: measure numbers repeat")
    module_ids = {m.id for m in modules}
    for m in measures:
        if m.module is not None and m.module not in module_ids:
            raise KnowledgeError(f"{meas_path}: measure #{m.number}: unknown module `{m.module}`")

    std_path = base / "standards.yaml"
    std = _read_yaml(std_path)
    domains = tuple(_parse(std_path, StandardDomain, raw, f"domain #{i}")
                    for i, raw in enumerate(_entries(std_path, std, "domains"), start=1))
    if std.get("count") != STANDARD_COUNT:
        raise KnowledgeError(f"{std_path}: count is {std.get('count')!r}; the program has {STANDARD_COUNT} standards")

    con_path = base / "contacts.yaml"
    contacts = _parse(con_path, Contacts, _read_yaml(con_path), "contacts")

    ans_path = base / "answers.yaml"
    unpublished = tuple(_parse(ans_path, Unpublished, raw, f"entry #{i}")
                        for i, raw in enumerate(_entries(ans_path, _read_yaml(ans_path), "unpublished"), start=1))
    facts = load_facts(base / FACTS_FILE, unpublished)
    unpublished = with_facts(unpublished, facts)

    examples = load_examples(base / EXAMPLES_DIR)
    model_path = base / INTENT_MODEL_FILE
    intent_model_json = model_path.read_text(encoding="utf-8") if model_path.is_file() else None
    statement_examples = load_statement_examples(base / STATEMENTS_DIR)
    statement_path = base / STATEMENT_MODEL_FILE
    statement_model_json = statement_path.read_text(encoding="utf-8") if statement_path.is_file() else None
    condition_examples = load_condition_examples(base / STATEMENTS_DIR / CONDITIONS_FILE)
    condition_path = base / CONDITION_MODEL_FILE
    condition_model_json = condition_path.read_text(encoding="utf-8") if condition_path.is_file() else None

    return Knowledge(
        examples=examples, intent_model_json=intent_model_json,
        statement_examples=statement_examples, statement_model_json=statement_model_json,
        condition_examples=condition_examples, condition_model_json=condition_model_json,
        rules=rules, score_threshold=score_threshold, rounds=rounds, modules=modules, measures=measures,
        standard_count=STANDARD_COUNT, standard_domains=domains, contacts=contacts,
        unpublished=unpublished, facts=facts, source_text=source_text,
        citations={r.id: RuleCitation(rule_id=r.id, title=r.title, quote=r.source) for r in rules.values()},
        version=knowledge_version(base, rounds_file),
    )


def knowledge_version(base: Path, rounds_file: Path | None = None) -> str:
    """A short content hash of every knowledge file (and the rounds file in use): the same
    content gives the same version on every process and machine."""
    digest = hashlib.sha256()
    files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".txt", ".json"))
    for path in files + ([rounds_file] if rounds_file else []):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        name = path.relative_to(base).as_posix() if path.is_relative_to(base) else f"rounds:{path.name}"
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


@lru_cache(maxsize=8)
def cached_knowledge(rounds_file: str | None = None) -> Knowledge:
    """Knowledge is read once per process (and per rounds file) and shared."""
    return load_knowledge(rounds_file=Path(rounds_file) if rounds_file else None)
