"""The knowledge base as typed, immutable data. Pure: the loader lives in qopi_bot.knowledge."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qopi_bot.models import RoundRef, RuleCitation, Season

MEASURE_COUNT = 25  # "a select set of twenty five measures"
STANDARD_COUNT = 20  # "comply with the 20 Certification Standards"
RULE_IDS = (
    "ELIG-ROUND", "ELIG-ABSTRACTION", "ELIG-PATHWAY", "ELIG-SCORE", "ELIG-SAMPLING",
    "ELIG-ATTESTATION", "MODULES-APPLICABLE", "APPLY-AFTER-REPORT", "VALIDITY",
    "APPLY-STANDARDS", "ENTITY-PRACTICE", "ENTITY-INTEGRATION", "ENTITY-LOOSE",
    "ENTITY-SUBSET", "ENTITY-EXCEPTION",
)


class _Strict(BaseModel):
    # defer_build: validators are built on first validation. `ask` takes its Knowledge from the
    # start-up cache (qopi_bot/knowledge_cache.py), never validates one, and so never pays for them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Rule(_Strict):
    id: str = Field(pattern=r"^[A-Z]+(-[A-Z]+)*$")
    title: str
    source: str = Field(min_length=10)
    explanation: str
    escalates: bool = False


class Round(_Strict):
    season: Season
    year: int = Field(ge=2000, le=2100)
    opens: dt.date | None = None
    closes: dt.date | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Round:
        if self.opens and self.closes and self.closes < self.opens:
            raise ValueError(f"closes ({self.closes}) is before opens ({self.opens})")
        for name, day in (("opens", self.opens), ("closes", self.closes)):
            if day is not None and abs(day.year - self.year) > 1:
                raise ValueError(f"{name} {day} is not near the round's year {self.year}")
        return self

    @property
    def ref(self) -> RoundRef:
        return RoundRef(season=self.season, year=self.year)


class Module(_Strict):
    id: str
    name: str


class Measure(_Strict):
    number: int = Field(ge=1, le=MEASURE_COUNT)
    code: str | None = None
    title: str | None = None
    module: str | None = None
    source: str | None = None
    source_year: int | None = None


class StandardDomain(_Strict):
    id: str
    name: str


class Contacts(_Strict):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]+$")
    phone: str
    team: str


class Unpublished(_Strict):
    id: str
    keywords: list[str] = Field(min_length=1)
    topic: str
    answer: str | None = None


class FactSource(_Strict):
    """A public page a fact comes from: its title, full URL and the day staff read it."""

    title: str = Field(min_length=3)
    url: str = Field(pattern=r"^https?://[^\s/]+\.[^\s]+$")
    read: dt.date


class Fact(_Strict):
    """A fact beyond the eligibility page (knowledge/facts.yaml), stated only with its sources."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    topic: str
    keywords: list[str] = Field(default_factory=list)
    answer: str = Field(min_length=10)
    sources: list[FactSource] = Field(min_length=1)

    def text(self) -> str:
        """The answer as the practice reads it, naming where it comes from."""
        named = "; ".join(f"{s.title} ({s.url}), read {s.read.strftime('%d %B %Y').lstrip('0')}" for s in self.sources)
        return f"{' '.join(self.answer.split())}\nSource{'s' if len(self.sources) > 1 else ''}: {named}."


class Example(_Strict):
    """One message the understanding learns from: what a practice wrote, and what it asked."""

    intent: str
    text: str = Field(min_length=1)


class StatementExample(_Strict):
    """One message and what it says about a fact (knowledge/statements/): "same_policies" read
    as "shared", "separate" or "unstated"."""

    fact: str
    reading: str
    text: str = Field(min_length=1)


class ConditionExample(_Strict):
    """One eligibility message and the failed or pending conditions it states, by name
    (knowledge/statements/conditions.yaml): none, one or several."""

    text: str = Field(min_length=1)
    states: tuple[str, ...] = ()


class Knowledge(_Strict):
    """Everything the core and the dialogue reason over. Immutable once loaded."""

    rules: dict[str, Rule]
    rounds: tuple[Round, ...]
    modules: tuple[Module, ...]
    measures: tuple[Measure, ...]
    standard_count: int
    standard_domains: tuple[StandardDomain, ...]
    contacts: Contacts
    unpublished: tuple[Unpublished, ...]
    facts: tuple[Fact, ...] = ()
    source_text: str
    # The Overall Quality Score needed (percent, inclusive, never rounded): rules.yaml.
    score_threshold: float = Field(gt=0, le=100)
    # Example messages per intent (knowledge/examples/), and the intent model trained on them
    # as stored in knowledge/intent-model.json (None when absent).
    examples: tuple[Example, ...] = ()
    intent_model_json: str | None = None
    # Messages that state a fact in words patterns may miss (knowledge/statements/), and the
    # models trained on them as stored in knowledge/statement-model.json (None when absent).
    statement_examples: tuple[StatementExample, ...] = ()
    statement_model_json: str | None = None
    # Eligibility messages and the conditions they state (knowledge/statements/conditions.yaml),
    # and the model trained on them as stored in knowledge/condition-model.json (None when absent).
    condition_examples: tuple[ConditionExample, ...] = ()
    condition_model_json: str | None = None
    # Built once at load: every Decision cites from here instead of building its own copies.
    citations: dict[str, RuleCitation] = Field(default_factory=dict)
    # A content hash of the folder (and rounds file) this was loaded from: every answer
    # records the version it was given under, and a reload is applied only when it changes.
    version: str = ""

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def round(self, ref: RoundRef) -> Round | None:
        for candidate in self.rounds:
            if candidate.season == ref.season and candidate.year == ref.year:
                return candidate
        return None
