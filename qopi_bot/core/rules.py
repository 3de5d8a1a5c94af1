"""Rule IDs and the code that evaluates each, tied together the way OpenFisca ties a
variable to its legal reference: every evaluator is registered under the rule ID whose
verbatim source sentence lives in knowledge/rules.yaml. A test checks both directions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from qopi_bot.core.kb import Knowledge
from qopi_bot.models import RuleCitation

ELIG_ROUND: Final = "ELIG-ROUND"
ELIG_ABSTRACTION: Final = "ELIG-ABSTRACTION"
ELIG_PATHWAY: Final = "ELIG-PATHWAY"
ELIG_SCORE: Final = "ELIG-SCORE"
ELIG_SAMPLING: Final = "ELIG-SAMPLING"
ELIG_ATTESTATION: Final = "ELIG-ATTESTATION"
MODULES_APPLICABLE: Final = "MODULES-APPLICABLE"
APPLY_AFTER_REPORT: Final = "APPLY-AFTER-REPORT"
VALIDITY: Final = "VALIDITY"
APPLY_STANDARDS: Final = "APPLY-STANDARDS"
ENTITY_PRACTICE: Final = "ENTITY-PRACTICE"
ENTITY_INTEGRATION: Final = "ENTITY-INTEGRATION"
ENTITY_LOOSE: Final = "ENTITY-LOOSE"
ENTITY_SUBSET: Final = "ENTITY-SUBSET"
ENTITY_EXCEPTION: Final = "ENTITY-EXCEPTION"

# The passing threshold ("The passing threshold for these measures in aggregate is 75%.")
# is knowledge, not code: Knowledge.score_threshold, from `score_threshold:` in rules.yaml.

# rule ID -> the function(s) that implement it; filled by @implements.
IMPLEMENTED_BY: dict[str, list[str]] = {}

F = Callable[..., object]


def implements(*rule_ids: str) -> Callable[[F], F]:
    """Mark a function as the code for these rule IDs (see tests/test_rules_traceability.py)."""

    def mark(func: F) -> F:
        for rule_id in rule_ids:
            IMPLEMENTED_BY.setdefault(rule_id, []).append(f"{func.__module__}.{func.__qualname__}")
        return func

    return mark


def cite(kb: Knowledge, rule_ids: list[str]) -> list[RuleCitation]:
    return [kb.citations[r] for r in dict.fromkeys(rule_ids) if r in kb.citations]
