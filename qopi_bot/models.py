"""Pydantic models shared across layers: what a practice told us, what the core decided,
what the dialogue answers. Every boundary (CLI JSON, store, channels) speaks these."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Season = Literal["spring", "fall"]


class Intent(str, Enum):
    ELIGIBILITY = "eligibility"
    SCORE_THRESHOLD = "score_threshold"
    VALIDITY = "validity"
    APPLICATION = "application"
    MULTI_SITE = "multi_site"
    SUBSET = "subset"
    EXCEPTION = "exception"
    SAMPLING = "sampling"
    ATTESTATION = "attestation"
    MODULES = "modules"
    MEASURES = "measures"
    STANDARDS = "standards"
    CONTACT = "contact"
    HUMAN = "human"
    GREETING = "greeting"
    OUT_OF_SCOPE = "out_of_scope"


class Outcome(str, Enum):
    ANSWERED = "answered"
    NEEDS_INFO = "needs_info"
    ESCALATED = "escalated"
    OUT_OF_SCOPE = "out_of_scope"
    ERROR = "error"


class Verdict(str, Enum):
    ELIGIBLE = "eligible"
    ELIGIBLE_WITH_CONDITIONS = "eligible_with_conditions"
    NOT_ELIGIBLE = "not_eligible"
    NEEDS_STAFF_REVIEW = "needs_staff_review"


class MissingFact(str, Enum):
    """Names the contract uses in `missing`; the dialogue asks for them one at a time."""

    SCORE = "score"
    ROUND = "round"
    PATHWAY = "pathway"
    SAMPLING = "sampling"
    CHARTS_POOL = "charts_pool"
    REPORT = "report"
    SAME_POLICIES = "same_policies"


class Entity(str, Enum):
    ONE_ENTITY = "one_entity"
    SEPARATE_ENTITIES = "separate_entities"
    SUBSET = "subset"


class RoundRef(BaseModel):
    """A collection round named by season and year, e.g. Fall 2025."""

    model_config = ConfigDict(frozen=True)

    season: Season
    year: int = Field(ge=2000, le=2100)

    def label(self) -> str:
        return f"{self.season.capitalize()} {self.year}"

    def next_same_season(self) -> RoundRef:
        return RoundRef(season=self.season, year=self.year + 1)

    def order_key(self) -> tuple[int, int]:
        return (self.year, 0 if self.season == "spring" else 1)


class Facts(BaseModel):
    """Everything a practice can tell us. None means "not known yet", never "no"."""

    model_config = ConfigDict(extra="forbid")

    score: float | None = Field(default=None, ge=0, le=100, description="Overall Quality Score, percent")
    completed_round: RoundRef | None = None
    participated_round: bool | None = None
    abstraction_complete: bool | None = None
    pathway: bool | None = None
    sampling_followed: bool | None = None
    charts_pool_complete: bool | None = None
    report_received: bool | None = None
    same_policies: bool | None = None
    site_count: int | None = Field(default=None, ge=1)
    integration_evidence: list[str] = Field(default_factory=list)
    wants_subset: bool | None = None
    wants_exception: bool | None = None
    wants_human: bool | None = None

    def merged_with(self, newer: Facts) -> Facts:
        """Facts given later in a conversation override earlier ones; unknowns never erase."""
        data = self.model_dump()
        for key, value in newer.model_dump().items():
            if key == "integration_evidence":
                data[key] = sorted(set(data[key]) | set(value))
            elif value is not None:
                data[key] = value
        return Facts.model_validate(data)


class RuleCheck(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    APPLIES = "applies"  # a condition or next step that applies to this case
    INFO = "info"  # cited to explain, not evaluated


class TraceStep(BaseModel):
    rule_id: str
    check: RuleCheck
    note: str


class RuleCitation(BaseModel):
    rule_id: str
    title: str
    quote: str


class ComputedFacts(BaseModel):
    """The `facts` object of the JSON answer (contract section 2); absent keys are omitted."""

    threshold: int | float | None = None
    score: float | None = None
    meets_threshold: bool | None = None
    completed_round: str | None = None
    valid_until_round: str | None = None
    valid_until: dt.date | None = None
    can_apply: bool | None = None
    entity: Entity | None = None
    measure_count: int | None = None
    standard_count: int | None = None
    email: str | None = None
    phone: str | None = None

    # Keys whose `null` is itself the answer (an unpublished date, an unknown can_apply)
    # must survive serialisation once the core has computed them.
    computed_nulls: set[str] = Field(default_factory=set, exclude=True)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in self.model_dump(mode="json").items():
            if value is not None or key in self.computed_nulls:
                out[key] = value
        return out


class Topic(str, Enum):
    """What the core is asked to decide. Informational topics cite rules and counts."""

    ELIGIBILITY = "eligibility"
    SCORE_THRESHOLD = "score_threshold"
    VALIDITY = "validity"
    APPLICATION = "application"
    ENTITY = "entity"
    SAMPLING = "sampling"
    ATTESTATION = "attestation"
    MODULES = "modules"
    MEASURES = "measures"
    STANDARDS = "standards"
    CONTACT = "contact"
    HUMAN = "human"


class Escalation(BaseModel):
    reason: Literal["ENTITY-SUBSET", "ENTITY-EXCEPTION", "HUMAN-REQUEST"]
    summary: str


class Decision(BaseModel):
    """What the core decided, with everything needed to explain it."""

    topic: Topic
    verdict: Verdict | None = None
    outcome: Outcome
    rules: list[str] = Field(default_factory=list, description="rule IDs that decided the answer")
    failed_rules: list[str] = Field(default_factory=list)
    citations: list[RuleCitation] = Field(default_factory=list)
    missing: list[MissingFact] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list, description="rule IDs the practice must still satisfy")
    reminders: list[str] = Field(default_factory=list, description="rule IDs whose facts are unknown but not blocking")
    next_steps: list[str] = Field(default_factory=list, description="rule IDs of the steps to take next")
    would_change: list[str] = Field(default_factory=list, description="what facts would turn a negative answer around")
    escalation: Escalation | None = None
    facts: ComputedFacts = Field(default_factory=ComputedFacts)
    trace: list[TraceStep] = Field(default_factory=list)


class Answer(BaseModel):
    """One reply, in the contract's JSON shape (plus `trace` for channels that show it)."""

    intent: Intent | None
    outcome: Outcome
    verdict: Verdict | None = None
    rules: list[str] = Field(default_factory=list)
    facts: dict[str, object] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)
    case_id: str | None = None
    text: str
    trace: list[TraceStep] = Field(default_factory=list, exclude=True)
    question: MissingFact | None = Field(default=None, exclude=True, description="what the bot just asked for")

    def contract_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class ConversationState(BaseModel):
    """What a thread remembers between turns."""

    facts: Facts = Field(default_factory=Facts)
    topic: Intent | None = None
    pending: MissingFact | None = None
    case_id: str | None = None  # the staff case this thread has (any status: a new message reopens it)
    turns: int = 0
    # The practice asked for reminders before its score expires (and has not stopped them):
    # they are scheduled once the round is known, and rescheduled when a new score is given.
    reminders: bool = False
    reminder_days: int | None = None  # an extra lead time the practice asked for
