"""Decisions in words a practice manager reads in five seconds.

The verdict or the date comes first, on one line; then at most a few short lines: the
deciding facts, the last day, the next step. Rule IDs and source quotes stay in the trace
(`/why`, the Slack context block, `--json`), not in the sentences."""

from __future__ import annotations

import datetime as dt

from qopi_bot.core.kb import Knowledge
from qopi_bot.models import ComputedFacts, Decision, Entity, Facts, MissingFact, RuleCheck, Topic, Verdict


def long_date(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"


def contact_line(kb: Knowledge) -> str:
    return f"{kb.contacts.email} or {kb.contacts.phone}"


def pct(value: float) -> str:
    return f"{value:g}%"


def threshold(kb: Knowledge) -> str:
    """The passing threshold as said in answers ("75%"), from knowledge/rules.yaml."""
    return f"{kb.score_threshold:g}%"

QUESTIONS: dict[MissingFact, str] = {
    MissingFact.SCORE: "What was your Overall Quality Score on the QOPI Certification Pathway (for example 78%), and from which round (for example Fall 2025)?",
    MissingFact.ROUND: "Which round is your score from (for example Fall 2025 or Spring 2026)?",
    MissingFact.SAME_POLICIES: "Do all of your sites operate under the same policies and procedures?",
    MissingFact.PATHWAY: "Did you choose the QOPI Certification Pathway for that round?",
    MissingFact.SAMPLING: "Did you follow the QOPI sampling methodology and meet the target chart numbers?",
    MissingFact.CHARTS_POOL: "Were the charts of all medical and hematology oncologists at all locations in the sampling pool?",
    MissingFact.REPORT: "Have you received your final QOPI Certification Report?",
}


def validity_sentence(f: ComputedFacts, today: dt.date, kb: Knowledge) -> str:
    """"Your Fall 2025 score can be used until 11 December 2026, the close of the Fall 2026 round." """
    head = f"Your {f.completed_round} score can be used until"
    if f.valid_until is not None:
        when = long_date(f.valid_until)
        if f.can_apply:
            return f"{head} {when}, the close of the {f.valid_until_round} round; it is still valid today."
        return (f"Your {f.completed_round} score expired on {when}, the close of the {f.valid_until_round} round; "
                "it can no longer be used to apply.")
    unpublished = (f"The {f.valid_until_round} close date is not published yet, so I can't give the exact last day; "
                   f"the QCP team can tell you ({contact_line(kb)}).")
    if f.can_apply is True:
        return f"{head} the close of the {f.valid_until_round} round, and it is still valid today. {unpublished}"
    if f.can_apply is False:
        return f"Your {f.completed_round} score has expired: the {f.valid_until_round} round has already closed."
    return f"{head} the close of the {f.valid_until_round} round. {unpublished}"


_FAILED: dict[str, str] = {
    "ELIG-ROUND": "a practice becomes eligible only by taking part in a QOPI collection round",
    "ELIG-ABSTRACTION": "the abstraction requirements for QOPI Certification must be completed",
    "ELIG-PATHWAY": "only a score from the QOPI Certification Pathway counts, not another reporting track",
    "ELIG-SAMPLING": "the QOPI sampling methodology must be followed and the target chart numbers met",
}


def facts_read(f: Facts | None) -> str:
    """"I read: 88%, Fall 2025, final report not received yet." so a misreading shows at once."""
    if f is None:
        return ""
    parts: list[str] = []
    if f.score is not None:
        parts.append(pct(f.score))
    if f.completed_round is not None:
        parts.append(f.completed_round.label())
    for value, yes, no in (
        (f.pathway, "Certification Pathway", "not the Certification Pathway"),
        (f.abstraction_complete, "abstraction complete", "abstraction not complete"),
        (f.sampling_followed, "sampling followed", "sampling not followed"),
        (f.charts_pool_complete, "all oncologists' charts in the pool", "some charts left out of the pool"),
        (f.report_received, "final report received", "final report not received yet"),
        (f.participated_round, "took part in a round", "no collection round yet"),
        (f.same_policies, "same policies at all sites", "sites with different policies"),
    ):
        if value is not None:
            parts.append(yes if value else no)
    if f.site_count and f.site_count > 1:
        parts.append(f"{f.site_count} sites")
    return f"I read: {', '.join(parts)}." if parts else ""


def _eligibility(d: Decision, today: dt.date, kb: Knowledge) -> list[str]:
    f = d.facts
    lines: list[str] = []
    if d.verdict is Verdict.NOT_ELIGIBLE:
        reasons = []
        for rule_id in d.failed_rules:
            if rule_id == "ELIG-SCORE":
                reasons.append(f"{pct(f.score or 0)} is below the {threshold(kb)} threshold (it is exact, never rounded up)")
            elif rule_id == "VALIDITY":
                reasons.append(f"the {f.completed_round} score has expired")
            else:
                reasons.append(_FAILED[rule_id])
        lines.append("Not eligible to apply: " + "; and ".join(reasons) + ".")
        if f.completed_round:
            lines.append(validity_sentence(f, today, kb))
        if d.would_change:
            lines.append("What would change this: " + "; or ".join(d.would_change) + ".")
        return lines
    if d.verdict is None:  # the score is still missing
        return [f"To be eligible you need an Overall Quality Score of at least {threshold(kb)} on the {len(kb.measures)} QOPI Certification "
                "Pathway measures, with the sampling methodology followed."]
    head = "Eligible, with conditions" if d.verdict is Verdict.ELIGIBLE_WITH_CONDITIONS else "Yes, you are eligible to apply"
    if f.completed_round and f.can_apply is None:
        head += f" while your {f.completed_round} score is still valid"
    lines.append(f"{head}: {pct(f.score or 0)} meets the {threshold(kb)} threshold.")
    if "APPLY-AFTER-REPORT" in d.conditions:
        lines.append("Wait for your final QOPI Certification Report: the application opens only once it arrives.")
    if "ELIG-ATTESTATION" in d.conditions:
        lines.append("Because not all oncologists' charts were in the sampling pool, include an attestation form with your "
                     "application explaining why the exclusion does not compromise the abstraction.")
    if f.completed_round:
        lines.append(validity_sentence(f, today, kb))
    elif "VALIDITY" in d.reminders:
        lines.append("A score stays valid until the close of the next same-season round; tell me the round and I'll give you the last day.")
    step = "Next step: "
    if "APPLY-AFTER-REPORT" in d.next_steps:
        step += "apply once you have your final QOPI Certification Report; "
    step += f"at application and payment you affirm that your policies comply with the {kb.standard_count} Certification Standards."
    lines.append(step)
    assumed = {"ELIG-PATHWAY": "the score is from the Certification Pathway",
               "ELIG-SAMPLING": "you followed the sampling methodology"}
    reminders = [assumed[r] for r in d.reminders if r in assumed]
    if reminders:
        lines.append("This assumes " + " and ".join(reminders) + ".")
    return lines


def _validity(d: Decision, today: dt.date, kb: Knowledge) -> list[str]:
    f = d.facts
    if f.completed_round is None:
        return ['A score is good for one year: until the close of the next "same season" round (a Fall 2025 score '
                "can be used until the last day of the Fall 2026 round)."]
    lines = [validity_sentence(f, today, kb)]
    if f.meets_threshold is False:
        lines.append(f"Note that {pct(f.score or 0)} is below the {threshold(kb)} threshold, so this score cannot be used to apply.")
    elif f.can_apply is not False:
        lines.append("Apply after you receive your final QOPI Certification Report; at application you affirm the "
                     f"{kb.standard_count} Certification Standards.")
    return lines


def _entity(d: Decision) -> list[str]:
    integration = ("show that your sites are functionally integrated: for example staff rotate across sites, one person or "
                   "entity implements policies everywhere, a common EMR, a single tax ID")
    if d.facts.entity is Entity.ONE_ENTITY:
        return ["Apply as one practice, with all your sites and all medical/hematology oncologists in one application.",
                "Certification goes to practices, not individual sites, and sites under the same policies and procedures "
                "form one practice.",
                f"In the application, {integration}."]
    if d.facts.entity is Entity.SEPARATE_ENTITIES:
        return ["Apply as separate entities: sites that do not operate under the same policies and procedures apply "
                "separately.",
                "Each group of sites that shares one set of policies and procedures applies on its own, with all of its "
                "sites and oncologists."]
    return ["It depends on your policies: a practice whose sites all operate under the same policies and procedures applies "
            "as one entity, with every site and oncologist; sites that don't apply as separate entities.",
            f"Applying as one, you {integration}."]


def _info(d: Decision, today: dt.date, kb: Knowledge) -> list[str]:
    t = d.topic
    if t is Topic.SCORE_THRESHOLD:
        lines = [f"The passing threshold is {threshold(kb)}: the Overall Quality Score across the {len(kb.measures)} Certification Pathway "
                 f"measures, in aggregate, must be at least {threshold(kb)}.",
                 f"It is exact: {kb.score_threshold:.1f}% passes, {kb.score_threshold - 0.01:.2f}% does not, and nothing is rounded up."]
        if d.facts.score is not None:
            lines.append(f"A score of {pct(d.facts.score)} {'meets' if d.facts.meets_threshold else 'does not meet'} it.")
        return lines
    if t is Topic.APPLICATION:
        lines = ["The application opens once you receive your final QOPI Certification Report with your Overall Quality Score.",
                 "Certification then starts with the application and payment, where you affirm that your policies and "
                 f"procedures comply with the {kb.standard_count} Certification Standards."]
        if d.facts.completed_round:
            lines.append(validity_sentence(d.facts, today, kb))
        # The program text closes its application paragraph with whom to ask; practices planning the steps need it.
        lines.append(f"Questions about the application: {contact_line(kb)}.")
        return lines
    if t is Topic.SAMPLING:
        return [f"Besides the {threshold(kb)} score, you must follow the QOPI sampling methodology and meet the target chart numbers for "
                "your practice size and modules.",
                "If not all oncologists' charts from all locations were in the sampling pool, an attestation form is "
                "needed with the application.",
                f"For your practice's target chart numbers, ask the QCP team: {contact_line(kb)}."]
    if t is Topic.ATTESTATION:
        return ["The attestation form is needed when not all charts of all medical and hematology oncologists at all "
                "locations were in the pool the charts were sampled from.",
                "You complete it when you apply, to justify why the exclusion does not compromise the validity of the "
                "abstraction."]
    if t is Topic.MODULES:
        names = ", ".join(m.name for m in kb.modules)
        return ["Submit data only for the modules that are applicable to your patient population.",
                f"The {len(kb.measures)} certification measures come from these modules: {names}; choose the QOPI Certification Pathway.",
                # Modules also set the chart target (eligibility bullet 1), and the module section names whom to ask.
                f"Your target chart numbers follow your practice size and applicable modules; questions: {kb.contacts.email}."]
    if t is Topic.MEASURES:
        return [f"The QOPI Certification Pathway has {len(kb.measures)} certification measures, drawn from the core, symptom/toxicity "
                "management, end of life, breast, lung and colorectal modules.",
                f"Your aggregate score on them must be at least {threshold(kb)}.",
                f"The full list of the {len(kb.measures)} measures is on ASCO's Measures Landing Page."]
    if t is Topic.STANDARDS:
        return [f"There are {kb.standard_count} Certification Standards: at application and payment you affirm that your policies and "
                f"procedures comply with all {kb.standard_count}.",
                f"For the text of the standards and what each one asks, contact the QCP team: {contact_line(kb)}."]
    if t is Topic.CONTACT:
        return [f"You can reach the {kb.contacts.team} at {kb.contacts.email} or {kb.contacts.phone}."]
    return []


def word(d: Decision, today: dt.date, kb: Knowledge) -> list[str]:
    """The answer's lines: the first is the verdict or the date."""
    if d.topic is Topic.ELIGIBILITY:
        return _eligibility(d, today, kb)
    if d.topic is Topic.VALIDITY:
        return _validity(d, today, kb)
    if d.topic is Topic.ENTITY:
        return _entity(d)
    return _info(d, today, kb)


def trace_lines(d: Decision) -> list[str]:
    marks = {RuleCheck.PASSED: "pass", RuleCheck.FAILED: "FAIL", RuleCheck.UNKNOWN: "unknown",
             RuleCheck.APPLIES: "applies", RuleCheck.INFO: "cited"}
    return [f"{s.rule_id}: {marks[s.check]} ({s.note})" for s in d.trace]
