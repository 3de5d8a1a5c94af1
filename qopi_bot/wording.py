"""Decisions in words a practice manager trusts: verdict first, the reason in the
program's terms with its rule ID, the dates, then the next step. Short and specific."""

from __future__ import annotations

import datetime as dt

from qopi_bot.core.kb import Knowledge
from qopi_bot.core.rules import SCORE_THRESHOLD
from qopi_bot.models import ComputedFacts, Decision, Entity, MissingFact, RuleCheck, Topic, Verdict


def long_date(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"


def contact_line(kb: Knowledge) -> str:
    return f"{kb.contacts.email} or {kb.contacts.phone}"


def pct(value: float) -> str:
    return f"{value:g}%"


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
    """"A Fall 2025 score is valid until the close of the Fall 2026 round: 11 December 2026." """
    head = f"A {f.completed_round} score is valid until the close of the {f.valid_until_round} round"
    if f.valid_until is not None:
        when = long_date(f.valid_until)
        if f.can_apply:
            return f"{head}: {when} (VALIDITY). On {long_date(today)} it can still be used to apply, up to and including that day."
        return f"{head}: {when} (VALIDITY). That date has passed, so the score has expired and can no longer be used to apply."
    unpublished = (f"The {f.valid_until_round} close date has not been published yet, so I can't give you the exact last day; "
                   f"ask the QCP team ({contact_line(kb)}) or check again once ASCO publishes it.")
    if f.can_apply is True:
        return f"{head} (VALIDITY). {unpublished} The score can still be used today."
    if f.can_apply is False:
        return f"{head} (VALIDITY). That round has already closed, so the score has expired."
    return f"{head} (VALIDITY). {unpublished}"


_FAILED: dict[str, str] = {
    "ELIG-ROUND": "a practice becomes eligible only by participating in a QOPI collection round (ELIG-ROUND)",
    "ELIG-ABSTRACTION": "the abstraction requirements for QOPI Certification must be completed (ELIG-ABSTRACTION)",
    "ELIG-PATHWAY": "only the QOPI Certification Pathway counts: a score from another reporting track cannot be used to apply (ELIG-PATHWAY)",
    "ELIG-SAMPLING": "the QOPI sampling methodology must be followed and the target chart numbers for your size and modules met (ELIG-SAMPLING)",
}


def _eligibility(d: Decision, today: dt.date, kb: Knowledge) -> str:
    f = d.facts
    parts: list[str] = []
    if d.verdict is Verdict.NOT_ELIGIBLE:
        reasons = []
        for rule_id in d.failed_rules:
            if rule_id == "ELIG-SCORE":
                reasons.append(f"your Overall Quality Score of {pct(f.score or 0)} is below the {SCORE_THRESHOLD:g}% threshold; "
                               "the threshold is exact and never rounded up (ELIG-SCORE)")
            elif rule_id == "VALIDITY":
                reasons.append(f"your score has expired: {validity_sentence(f, today, kb)}")
            else:
                reasons.append(_FAILED[rule_id])
        parts.append("Not eligible to apply: " + "; and ".join(reasons) + ".")
        if f.completed_round and "VALIDITY" not in d.failed_rules:
            parts.append(validity_sentence(f, today, kb))
        if d.would_change:
            parts.append("What would change this: " + "; or ".join(d.would_change) + ".")
        return " ".join(parts)
    if d.verdict is None:  # needs the score
        return (f"To be eligible to apply you need an Overall Quality Score of at least {SCORE_THRESHOLD:g}% on the 25 measures "
                "of the QOPI Certification Pathway (ELIG-SCORE), with the QOPI sampling methodology followed.")
    head = "Eligible, with conditions" if d.verdict is Verdict.ELIGIBLE_WITH_CONDITIONS else "Yes, you are eligible to apply"
    if f.completed_round and f.can_apply is None:
        head += f", as long as your {f.completed_round} score is still valid when you apply"
    parts.append(f"{head}: your Overall Quality Score of {pct(f.score or 0)} meets the {SCORE_THRESHOLD:g}% threshold (ELIG-SCORE).")
    if f.completed_round:
        parts.append(validity_sentence(f, today, kb))
    if "ELIG-ATTESTATION" in d.conditions:
        parts.append("Because not all medical/hematology oncologists' charts from all locations were in the sampling pool, you must "
                     "complete an attestation form with your application explaining why the exclusion does not compromise "
                     "the validity of the abstraction (ELIG-ATTESTATION).")
    if "APPLY-AFTER-REPORT" in d.conditions:
        parts.append("The application opens only once you receive your final QOPI Certification Report with your Overall "
                     "Quality Score, so wait for that report before you apply (APPLY-AFTER-REPORT).")
    assumed = {"ELIG-PATHWAY": "the score is from the QOPI Certification Pathway",
               "ELIG-SAMPLING": "you followed the QOPI sampling methodology and met the target chart numbers"}
    reminders = [r for r in d.reminders if r in assumed]
    if reminders:
        parts.append("This assumes " + " and that ".join(assumed[r] for r in reminders) + f" ({', '.join(reminders)}).")
    if "VALIDITY" in d.reminders:
        parts.append("Tell me which round the score is from and I'll tell you until when you can use it.")
    step = "Next step: " if "APPLY-AFTER-REPORT" not in d.conditions else "Then: "
    if "APPLY-AFTER-REPORT" in d.next_steps:
        step += "apply once you have your final QOPI Certification Report (APPLY-AFTER-REPORT); "
    step += ("at application and payment you affirm that your policies and procedures comply with the 20 "
             "Certification Standards (APPLY-STANDARDS).")
    parts.append(step[0].upper() + step[1:])
    return " ".join(parts)


def _validity(d: Decision, today: dt.date, kb: Knowledge) -> str:
    if d.facts.completed_round is None:
        return ('A score is good for one year: it stays valid until the close of the next "same season" round. For example, '
                "a score from the Fall 2016 round can be used to apply until the last day of the Fall 2017 round (VALIDITY).")
    text = validity_sentence(d.facts, today, kb)
    if d.facts.meets_threshold is False:
        text += f" Note that {pct(d.facts.score or 0)} is below the {SCORE_THRESHOLD:g}% threshold, so this score cannot be used to apply (ELIG-SCORE)."
    elif d.facts.can_apply:
        text += " Apply after you receive your final QOPI Certification Report, and affirm the 20 Certification Standards at application and payment (APPLY-STANDARDS)."
    return text


def _entity(d: Decision, kb: Knowledge) -> str:
    integration = ("show that the sites are functionally integrated, for example: staff rotate across all sites, one person or "
                   "entity is in charge of implementing policies across all sites, a common EMR, and a single tax ID number (ENTITY-INTEGRATION)")
    if d.facts.entity is Entity.ONE_ENTITY:
        return ("Apply as one practice. QOPI Certification goes to practices, not individual sites, and a practice applies as one "
                "entity with all its office sites and all medical/hematology oncologists (ENTITY-PRACTICE). Because your sites "
                f"operate under the same policies and procedures, you apply together; in the application you must {integration}.")
    if d.facts.entity is Entity.SEPARATE_ENTITIES:
        return ("Apply as separate entities. Organizations whose sites do not operate under the same policies and procedures "
                "must apply for certification as separate entities (ENTITY-LOOSE): each group of sites that shares one set of "
                "policies and procedures applies on its own, including all of its sites and oncologists (ENTITY-PRACTICE).")
    return ("Certification goes to practices, not individual sites: a practice applies as one entity with all of its office sites "
            "and medical/hematology oncologists (ENTITY-PRACTICE). What defines a practice is that the same policies and "
            f"procedures apply at all sites; you must {integration}. Sites that do not share the same policies and procedures "
            "apply as separate entities (ENTITY-LOOSE).")


def _info(d: Decision, today: dt.date, kb: Knowledge) -> str:
    t = d.topic
    if t is Topic.SCORE_THRESHOLD:
        base = (f"The passing threshold is {SCORE_THRESHOLD:g}%: the aggregate Overall Quality Score on the 25 QOPI Certification "
                "Pathway measures must be at least 75% (75.0% passes, 74.99% does not; scores are never rounded up) (ELIG-SCORE).")
        if d.facts.score is not None:
            verdict = "meets" if d.facts.meets_threshold else "does not meet"
            base += f" A score of {pct(d.facts.score)} {verdict} it."
        return base
    if t is Topic.APPLICATION:
        text = ("The QOPI Certification Application opens once you receive your final QOPI Certification Report with your "
                "Overall Quality Score (APPLY-AFTER-REPORT). The certification process itself begins with the application and "
                "payment; at that point you affirm that your policies and procedures comply with the 20 Certification Standards "
                "(APPLY-STANDARDS).")
        if d.facts.completed_round:
            text += " " + validity_sentence(d.facts, today, kb)
        return text
    if t is Topic.SAMPLING:
        return ("Besides the 75% score, you must follow the QOPI sampling methodology and meet the target chart requirements for "
                "your practice size and applicable modules (ELIG-SAMPLING). If not all charts of all medical/hematology "
                "oncologists at all locations were in the sampling pool, you complete an attestation form with your application "
                "(ELIG-ATTESTATION). For your practice's target chart numbers, ask the QCP team: " + contact_line(kb) + ".")
    if t is Topic.ATTESTATION:
        return ("The attestation form is required when not all charts from all medical and hematology oncologists at all office "
                "locations were included in the pool the charts were sampled from. You complete it when you apply, to justify why "
                "the exclusion does not compromise the validity of the abstraction (ELIG-ATTESTATION).")
    if t is Topic.MODULES:
        names = ", ".join(m.name for m in kb.modules)
        return ("Submit data only for the modules that apply to your patient population (MODULES-APPLICABLE). The 25 "
                f"certification measures are drawn from these modules: {names}, and you must choose the QOPI Certification "
                "Pathway (ELIG-PATHWAY).")
    if t is Topic.MEASURES:
        known = [m for m in kb.measures if m.title]
        listed = "; ".join(f"{m.code}: {m.title}" for m in known)
        return ("The QOPI Certification Pathway has 25 certification measures, drawn from the core, symptom/toxicity management, "
                "end of life, breast, lung and colorectal modules; your aggregate score on them must be at least 75% "
                f"(ELIG-PATHWAY, ELIG-SCORE). Examples: {listed}. The full list is on ASCO's Measures Landing Page.")
    if t is Topic.STANDARDS:
        domains = "; ".join(d_.name for d_ in kb.standard_domains)
        return ("There are 20 Certification Standards. At application and payment you affirm that your policies and procedures "
                f"comply with all 20 (APPLY-STANDARDS). They cover four areas: {domains}.")
    if t is Topic.CONTACT:
        return f"You can reach the {kb.contacts.team} at {kb.contacts.email} or {kb.contacts.phone}."
    return ""


def word(d: Decision, today: dt.date, kb: Knowledge) -> str:
    if d.topic is Topic.ELIGIBILITY:
        return _eligibility(d, today, kb)
    if d.topic is Topic.VALIDITY:
        return _validity(d, today, kb)
    if d.topic is Topic.ENTITY:
        return _entity(d, kb)
    return _info(d, today, kb)


def trace_lines(d: Decision) -> list[str]:
    marks = {RuleCheck.PASSED: "pass", RuleCheck.FAILED: "FAIL", RuleCheck.UNKNOWN: "unknown",
             RuleCheck.APPLIES: "applies", RuleCheck.INFO: "cited"}
    return [f"{s.rule_id}: {marks[s.check]} ({s.note})" for s in d.trace]
