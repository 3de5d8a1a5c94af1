"""understand(text, today, ...) -> Understanding: what a message asks and what it states.

The reading happens in named steps, each a plain function:

1. `clean`: forwarding headers, signatures, Slack tokens out; wrapped lines re-joined.
2. `extract` (extraction.py): facts from the whole message: scores, rounds, conditions.
3. the intent model (classifier.py, learned from knowledge/examples/) reads the whole
   message and each question in it.
4. reading rules turn those predictions into the questions to answer, in order:
   `escalation_first`, `facts_make_a_case`, `can_we_apply_asks_eligibility`, `sites_make_it_multi_site`,
   `dates_make_it_validity`, `pool_membership_is_attestation`, `threshold_words_ask_the_threshold`, `greeting_only_alone`, `scope`. Each says why in its docstring.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from qopi_bot.core.kb import Knowledge
from qopi_bot.models import Facts, Intent, MissingFact
from qopi_bot.understanding import conditions, cues, statements
from qopi_bot.understanding.classifier import IntentModel, Prediction
from qopi_bot.understanding.extraction import Extraction, Problem, extract
from qopi_bot.understanding.memo import Readings, readings_for
from qopi_bot.understanding.model_store import model_for
from qopi_bot.understanding.normalize import normalize, strip_signature
from qopi_bot.understanding.segments import clean_lines, logical_lines, questions, unfold_tables

MAX_QUESTIONS = 3
ESCALATIONS = (Intent.HUMAN, Intent.SUBSET, Intent.EXCEPTION)
INFO_TOPICS = (Intent.SAMPLING, Intent.ATTESTATION, Intent.MODULES, Intent.MEASURES, Intent.STANDARDS,
               Intent.APPLICATION, Intent.SCORE_THRESHOLD, Intent.CONTACT)


_OWN_SCORE = re.compile(r"\bits (existing|current|own|latest|last) (score|oqs|result)\b|\b(our|my|are|their|client's)\s+(\w+\s+){0,3}(score|scores|result|results|oqs|numbers?|percentage|grade|rating)\b|\bours\b|\b(for|to) us\b|"
                        r"^(?!.*\b(a|any|in general|generally|once you)\b).*\bthe (score|oqs|result|grade)\b|"
                        r"\bwe (got|scored|received|have|had|did|completed|finished|earned|took|were)\b|\b(is|was) (it|that) still\b")


# "Just in general, not for us specifically": a question about the rule, whatever pronouns it has.
_GENERAL = re.compile(r"\b(in general|generally|not for us|not (about )?ours|not about (our|my) (own )?(\w+ )?(numbers?|scores?|situation|case)|general question|hypothetically|as a rule|for any practice|"
                      r"(exactly )?(a year|one year|12 months|twelve months|365 days) (after|from)|(start|run|count)s? from|tied to the (round|rounds|calendar|schedule))\b")


class Understanding(BaseModel):
    text: str  # normalized
    intent: Intent | None  # the main question; None: no question, only facts (a reply)
    intents: list[Intent] = Field(default_factory=list)  # every question asked, main first (at most 3)
    confidence: float = 0.0  # the intent model's score for the main question
    sure: bool = False  # the model read the message, or one of its questions, with a clear margin
    nothing_ours: bool = False  # no program word, no fact: only a thread's context can give it a topic
    runner_up: Intent | None = None
    facts: Facts = Field(default_factory=Facts)
    problems: list[Problem] = Field(default_factory=list)
    threshold_question: bool = False
    in_domain: bool = False
    asks: bool = False  # the message asks something (a question mark or a question word first)
    answered_pending: bool = False  # the message answers the question the bot asked
    mentions_attachment: bool = False
    unpublished_topic: str | None = None
    asks_round_dates: bool = False
    escalation: Intent | None = None  # a request for a person, a subset or an exception
    own_score: bool = False  # speaks of the practice's own score ("our score"), not scores in general
    doubt: Intent | None = None  # a competing reading that would change the answer: ask which one is meant
    asks_integration_evidence: bool = False  # "how do we show / what proof that our sites are integrated?"
    reminder: Literal["start", "stop"] | None = None  # "remind me before it expires" / "stop the reminders"
    reminder_days: int | None = None  # a lead time the request names ("a month before" -> 30)
    rules_applied: list[str] = Field(default_factory=list)  # which reading rules changed the model's reading
    direct_question: bool = False  # a question sentence of its own (a question word, not inside a quote)


class _Reading(BaseModel):
    """Work in progress while the reading rules run."""

    text: str
    ex: Extraction
    whole: Prediction
    asked: list[tuple[str, Prediction]]
    escalation_strength: dict[Intent, float]
    staff_topic: str | None = None  # a topic staff answered in knowledge/facts.yaml, by its keywords
    domain: bool = False  # the program's own name or vocabulary (cues._DOMAIN)
    program_words: bool = False  # words of the certification business (cues._PROGRAM_WORDS)
    intents: list[Intent] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list)

    model_config = {"arbitrary_types_allowed": True}


def clean(raw: str) -> tuple[str, list[str]]:
    """(normalized whole text, normalized logical lines)."""
    lines = logical_lines(strip_signature(unfold_tables(clean_lines(raw))))
    normalized = [normalize(line) for line in lines]
    return normalize("\n".join(lines)), [line for line in normalized if line]


# ------------------------------------------------------------------ reading rules
def escalation_first(r: _Reading) -> None:
    """A plausible request for a person, for part of the practice, or for an exception opens a
    case: a missed escalation costs more than an unneeded one. Named patterns or a confident
    model reading of any question count; merely describing several sites does not."""
    strength = r.escalation_strength
    wanted = [i for i in ESCALATIONS if strength.get(i, 0) >= 4]
    for index, (_, p) in enumerate([("", r.whole), *r.asked]):
        intent = Intent(p.intent)
        # The whole message read as an escalation counts when the model leans that way at all; a single question
        # needs a clearer reading, since short questions are easier to misread.
        if intent in ESCALATIONS and p.score >= (0.0 if index == 0 else 0.1) and intent not in wanted:
            if intent is Intent.SUBSET and not _PART_WORDS.search(r.text):
                continue  # "can our practice get certified?" names no part of the practice
            wanted.append(intent)
    if r.ex.facts.charts_pool_complete is False and Intent.SUBSET in wanted and strength.get(Intent.SUBSET, 0) < 6 \
            and Intent(r.whole.intent) is not Intent.SUBSET:
        wanted.remove(Intent.SUBSET)  # "the satellite's charts were left out of the pool" is the attestation case
    if Intent.SUBSET in wanted and not strength.get(Intent.SUBSET, 0) and re.search(
            r"\b(together|as one|one application|single application|separately|separate applications?|one entity|jointly)\b", r.text):
        # "each has its own P&Ps and its own EMR. Can we certify together?": the model leans to a
        # subset on "own", but the message asks how its sites apply, with no part left out.
        wanted.remove(Intent.SUBSET)
        r.applied.append("escalation_first:together_is_multi_site")
    if Intent.SUBSET in wanted and strength.get(Intent.SUBSET, 0) < 6 and _EACH_SITE.search(r.text) \
            and not _WISH.search(r.text):
        # "six clinics under one set of P&Ps - is each clinic certified on its own?" asks how
        # certification works for sites; it describes sites, it does not ask to leave any out.
        wanted.remove(Intent.SUBSET)
        r.applied.append("escalation_first:each_site_is_not_a_subset")
    if Intent.HUMAN in wanted and strength.get(Intent.HUMAN, 0) < 6 and _ASKS_CONTACT.search(r.text):
        # "What's the team's phone number? I'd rather talk it through on speaker": they want the
        # number to call themselves.
        wanted.remove(Intent.HUMAN)
        r.applied.append("escalation_first:contact_details_are_not_a_request")
    if _ONLY_ASKING.search(r.text):
        # "Does the program text provide any appeal process? I am asking only what the text says.":
        # a question about the rules, not a request; only a plain request for a person still counts.
        kept = [i for i in wanted if i is Intent.HUMAN or strength.get(i, 0) >= 6]
        if kept != wanted:
            wanted = kept
            r.applied.append("escalation_first:only_asking_what_the_text_says")
    if wanted:
        # The reason staff see: subset and exception say more than "a person, please".
        wanted.sort(key=lambda i: (i is Intent.HUMAN, -strength.get(i, 0)))
        r.intents.append(wanted[0])
        r.applied.append(f"escalation_first:{wanted[0].value}")


_ONLY_ASKING = re.compile(r"\b(asking only|only asking|just asking|purely (as a matter of|hypothetical\w*|informational|academic)|"
                          r"not asking (you )?(to|for)|what the (published |program |program's )?text says|hypothetically|in principle|in theory)\b")


# A request to certify part of a practice names the part somehow: only, just, without, leave out...
_PART_WORDS = re.compile(r"\b(only|just|part|portion|some of|one of|two of|without|except|exclud\w*|leave|leaving|left|separate\w*|own|alone|"
                         r"apart|subset|rest|remainder|not all|carve\w*|drop\w*|omit\w*|by itself|themselves|independent\w*|individual\w*|single|main|later|first)\b")
_ASKS_CONTACT = re.compile(r"\b(what('s| is)|where('s| is)|which is|give me|send me|need|looking for)\s+(\w+\s+){0,3}(phone( number)?|number|email( address)?|contact (info|information|details))\b")
_EACH_SITE = re.compile(r"\b(each|every|individual|all)\s+(\w+\s+){0,3}(site|clinic|location|office|campus|practice)(s|es)?\b")
_WISH = re.compile(r"\b(want|wants|wanted|would like|'d like|wish|hope|hoping|plan|planning|prefer|rather|only|just|leave|exclude|without)\b")


def _asks_about_applying(text: str) -> bool:
    return bool(re.search(r"\b(what now|we (good|ok|okay|fine|set|covered)|any (issues?|concerns?)|where does (that|this) leave|what (are|is) (our|the) (options|next steps?)|what do (we|i) do|"
                          r"does (that|this) (change|affect)|thoughts|apply|applying|application|eligib\w*|qualif\w*|too late|still (good|ok|okay|use|valid)|"
                          r"go ahead|submit|enough|pass(ed|es)?|make (it|the cut)|good to go|are we (good|ok|okay|set|fine))\b", text))


# The practice speaking of itself: a score in such a message is its own, not a threshold asked about.
_WE = re.compile(r"\b(our|we|we've|we're|us|client's|clients'|client [a-z]'s|their|they're|they've)\b")


def _failing(f: Facts) -> bool:
    """A requirement the practice says it did not meet (pathway, sampling, a round, abstraction)."""
    return any(v is False for v in (f.pathway, f.sampling_followed, f.participated_round, f.abstraction_complete))


_OTHER_BODY = re.compile(r"\b(commission on cancer|coc|joint commission|jcaho|napbc|magnet|cap|nccn|astro|apex)\b")
_RESCUE = re.compile(r"\b(would|will|does|do|can|could)\b.{0,40}\b(fix|fixes|save|saves|solve|solves|make up for|rescue|offset|cure|remedy|repair)\b|"
                     r"\b(only|main|biggest|last|remaining|one) (obstacle|issue|problem|hurdle|blocker|thing (standing|stopping|in the way))\b")
_NEXT_STEPS = re.compile(r"\bwhat (do|should|does|would|will) (we|they|i|the practice|our practice) do (next|now|then|once|after|when)\b|"
                         r"\bwhat('s| is| are) (the )?next steps?\b|\bwhat happens (next|after|once|then)\b")


def report_questions_ask_the_application(r: _Reading, topic: Intent, question: str) -> Intent:
    """"does it have to be the score from the final report, not the preliminary one?": when the
    application may start and on what, which the application answer says."""
    if topic in (Intent.VALIDITY, Intent.SCORE_THRESHOLD) or (topic is Intent.ELIGIBILITY and r.ex.facts.score is None):
        if re.search(r"\b(final|preliminary|prelim\w*|draft|interim)\b.{0,30}\b(report|score|number|result)s?\b|\b(report|score) from the (final|prelim\w*)\b", question) \
                and re.search(r"\b(have to|has to|must|need|needs|should|count|use|wait)\b", question) and not re.search(r"\b(how long|until when|expire\w*|valid)\b", question):
            r.applied.append("report_questions_ask_the_application")
            return Intent.APPLICATION
    return topic


def who_applies_is_multi_site(r: _Reading, topic: Intent, question: str) -> Intent:
    """"does each doc apply individually or is it the whole practice?": who the applicant is."""
    if topic not in ESCALATIONS and topic is not Intent.MULTI_SITE and re.search(
            r"\b(each|every|individual) (doc|doctor|physician|oncologist|provider|site|clinic|office|location)s? (apply|applies|get certified|gets certified|certif\w*)\b"
            r".{0,40}\b(individually|separately|on (their|its) own|whole practice|entire practice|as a (group|practice))\b", question):
        r.applied.append("who_applies_is_multi_site")
        return Intent.MULTI_SITE
    return topic


def what_you_need_to_decide_is_eligibility(r: _Reading, topic: Intent, question: str) -> Intent:
    """"I need to know whether we are eligible. What information do you need from me?"."""
    if topic in (Intent.APPLICATION, Intent.CONTACT) and re.search(r"\bwhat (information|info|details|facts|numbers|data) do you need\b", question) \
            and re.search(r"\beligib\w*|\bqualif\w*|\bcan we apply\b", r.text):
        r.applied.append("what_you_need_to_decide_is_eligibility")
        return Intent.ELIGIBILITY
    return topic


def affirming_is_the_standards(r: _Reading, topic: Intent, question: str) -> Intent:
    """"what exactly do we have to affirm when we apply and pay?": the Certification Standards."""
    if topic in (Intent.ELIGIBILITY, Intent.APPLICATION, Intent.VALIDITY) and r.ex.facts.score is None \
            and re.search(r"\bwhat\b.{0,30}\b(affirm|attest to|sign off on|agree to|comply with)\b", question):
        r.applied.append("affirming_is_the_standards")
        return Intent.STANDARDS
    return topic


def counting_applications_is_multi_site(r: _Reading, topic: Intent, question: str) -> Intent:
    """"do they need 2 apps?": how many applications is the multi-site question."""
    if topic in (Intent.ELIGIBILITY, Intent.APPLICATION) and re.search(
            r"\b(\d+|one|two|three|four|five|six|separate|single|multiple|several) (apps|applications?)\b", question) \
            and not re.search(r"\b(eligib\w*|can (we|they) apply)\b", question):
        r.applied.append("counting_applications_is_multi_site")
        return Intent.MULTI_SITE
    return topic


def next_steps_ask_the_application(r: _Reading, topic: Intent, question: str) -> Intent:
    """"what's passing, and what do they do once they've passed?": the second asks what comes next,
    which is the application."""
    if topic in (Intent.SCORE_THRESHOLD, Intent.VALIDITY, Intent.OUT_OF_SCOPE, Intent.GREETING) and _NEXT_STEPS.search(question) \
            and r.ex.facts.score is None:
        r.applied.append("next_steps_ask_the_application")
        return Intent.APPLICATION
    return topic


def facts_make_a_case(r: _Reading, topic: Intent, question: str) -> Intent:
    """A question asked alongside the practice's own case (a score, or a requirement it failed)
    is about that case: "88%, still waiting on the report - can we apply?" asks eligibility,
    whatever single word the question used."""
    f = r.ex.facts
    has_case = (f.score is not None and (not r.ex.threshold_question or bool(_WE.search(r.text)))) or _failing(f)
    if not has_case:
        return topic
    if topic in INFO_TOPICS and f.score is not None and _RESCUE.search(question):
        # "65% fall 2025, and they left two docs' charts out - would the attestation form fix it?": the
        # case decides, and the answer says what would change it.
        r.applied.append("would_it_fix_our_case")
        return Intent.ELIGIBILITY
    if topic in INFO_TOPICS and f.score is not None and f.completed_round is not None and _OTHER_BODY.search(question):
        # "Score: 92.1%. Report: received. Also, does QOPI Certification satisfy any CoC standards?":
        # another body's standards are not ours to answer; the case they state is.
        r.applied.append("another_body_leaves_the_case")
        return Intent.ELIGIBILITY
    if topic in (Intent.SAMPLING, Intent.ATTESTATION, Intent.MODULES, Intent.MEASURES, Intent.STANDARDS) \
            and re.search(_TOPIC_WORDS[topic], question) and not re.search(r"\b(eligib\w*|apply|qualify|percent)\b|\d\s*%|\b[4-9]\d(\.\d+)?\b", question):
        return topic  # "80% in spring 2025 - are we eligible? And must we still submit the colorectal module?"
    if topic in (Intent.GREETING, Intent.APPLICATION, Intent.SCORE_THRESHOLD, Intent.SAMPLING, Intent.ATTESTATION,
                 Intent.MODULES, Intent.MEASURES, Intent.STANDARDS, Intent.OUT_OF_SCOPE, Intent.MULTI_SITE):
        specific = re.search(r"\b(what (is|are|does)|what's|how many|which|explain|where)\b.{0,40}"
                             r"\b(attestation|sampling|modules?|measures?|standards|application process|form)\b", question)
        states_case = bool(re.search(r"\d\s*%|\b[4-9]\d(\.\d+)?\b", question)) and bool(re.search(r"\b(problem|issue)\b", question))
        if topic in (Intent.APPLICATION, Intent.SCORE_THRESHOLD, Intent.GREETING, Intent.OUT_OF_SCOPE) or \
                (not specific and (_asks_about_applying(question) or states_case)):
            # ("77% spring 2025 but the charts were hand-picked - problem?" asks about the case it states)
            if topic is Intent.MULTI_SITE and (not _asks_about_applying(question) or re.search(
                    r"\b(together|separate\w*|one application|single application|as one|entit\w+|each|every|sites?|locations?|clinics?)\b",
                    question)):
                return topic  # "do we apply together?" stays the multi-site question
            if topic is Intent.SCORE_THRESHOLD and not _asks_about_applying(question) and (
                    f.score is None or not _WE.search(r.text)):
                return topic  # "is a score of exactly 75% sufficient?" asks the threshold
            return Intent.ELIGIBILITY
    if topic is Intent.MULTI_SITE and f.score is not None and f.site_count is None and f.same_policies is None \
            and not re.search(r"\b(sites?|locations?|clinics?|offices?|campus\w*|entit\w+|together|separate\w*)\b", r.text):
        return Intent.ELIGIBILITY  # "if we get a 74.6, does that count?": a score and no sites in sight
    if topic is Intent.VALIDITY and _failing(f) and f.score is not None \
            and not re.search(r"\b(until when|how long|when does|expire|last day|deadline|what date)\b", question):
        return Intent.ELIGIBILITY  # "regular track, not the cert pathway. 85 in sp25. usable for cert?": the failure decides
    if topic is Intent.VALIDITY and _asks_about_applying(question) and f.score is not None \
            and not re.search(r"\b(until when|how long|when does|expire|last day|deadline|what date)\b", question):
        return Intent.ELIGIBILITY  # "Spring 2024, 90% - is it too late to apply?" wants a verdict
    return topic


# Words that keep a question on its own topic even among sites.
_TOPIC_WORDS = {
    Intent.SCORE_THRESHOLD: r"\b(threshold|cut ?off|minimum|passing)\b|\d\s*%|\b75\b", Intent.SAMPLING: r"\bsampl\w*",
    Intent.ATTESTATION: r"\b(attestation|pool)\b", Intent.MODULES: r"\bmodules?\b", Intent.MEASURES: r"\bmeasures?\b",
    Intent.STANDARDS: r"\bstandards\b",
    Intent.CONTACT: r"\b(e-?mail address|phone number|contact (info|details|address)|send (my |our |any )?questions|"
                    r"who (do|should|can) (i|we) (ask|contact|call|email|write to)|reach (the |your )?(qcp |certification |program )?(team|staff|people|help ?desk))\b",
}


def can_we_apply_asks_eligibility(r: _Reading, topic: Intent, question: str) -> Intent:
    """"Can we apply for certification?" asks whether this practice is eligible (decide or ask
    for the facts), not how the application works."""
    if topic not in ESCALATIONS and topic is not Intent.ELIGIBILITY and re.search(
            r"\b(do|does|would|will|did) (we|they|our \w+|the practice|the group|their \w+) (\w+ )?(meet|satisfy|fulfil+|qualify under) (the |all (the )?)?(requirements|criteria|prerequisites|conditions)\b", question):
        r.applied.append("meeting_the_requirements_is_eligibility")
        return Intent.ELIGIBILITY  # "Do they meet the requirements to apply?"
    if topic in (Intent.APPLICATION, Intent.GREETING, Intent.OUT_OF_SCOPE, Intent.CONTACT) and re.search(r"\b((can|could|may|are) (we|our (\w+ ){0,2}(practice|group|clinic|network|center|office|team|organization|program))|we (can|could|may)|(are )?we able to) (\w+ ){0,2}(apply|be certified|get (\w+ )?certified|qualify|(try|go) for (the )?(\w+ )?certification|"
                                                  r"(submit|send|file|start) (the |our |an? )?(\w+ )?application|(go|jump|move|proceed) (\w+ )?(into|to|with) (a |an |the |our )?(\w+ )?application)\b", question) \
            and not re.search(r"\b(how|when|where|what|which|steps?|process|before|after|once|until|wait|without|online|portal)\b", question):
        r.applied.append("can_we_apply_asks_eligibility")
        return Intent.ELIGIBILITY
    return topic


def sites_make_it_multi_site(r: _Reading, topic: Intent, question: str, sure: bool = False) -> Intent:
    """Sites described with their policies, and a question about how to apply, is the
    multi-site question (unless the practice's score is also on the table)."""
    f = r.ex.facts
    if topic is Intent.APPLICATION and f.score is None and re.search(
            r"\b(every|all|each)\s+(\w+\s+){0,2}(sites?|locations?|clinics?|offices?)\b", question):
        return Intent.MULTI_SITE  # "does the application have to cover every site?"
    if (f.same_policies is None and (f.site_count or 0) < 2) or f.score is not None:
        return topic
    how = re.search(r"\b(how|together|separate\w*|one application|single application|as one|each|individual\w*|either way)\b", question)
    about_sites = f.same_policies is not None or len(r.text.split()) <= 25 or re.search(r"\b(polic\w*|procedures?)\b", r.text) or re.search(
        r"\b(sites?|locations?|clinics?|offices?|campus\w*|entit\w+|together|separate\w*|as one|(1|one|a single|single|how many) applications?)\b", question)
    if not about_sites:
        return topic  # "we are seven sites on OncoEMR. When does the application open?"
    own_word = _TOPIC_WORDS.get(topic)
    if own_word is not None and re.search(own_word, question):
        return topic  # "is the 75% threshold calculated per site?" still asks about the threshold
    if topic in (Intent.APPLICATION, Intent.GREETING) or (topic is Intent.ELIGIBILITY and how) \
            or (not sure and topic in INFO_TOPICS and topic is not Intent.CONTACT and r.whole.intent == Intent.MULTI_SITE.value):
        return Intent.MULTI_SITE
    return topic


_THRESHOLD_WORDS = re.compile(r"\b(minimum|meet or exceed|cut[- ]?off|threshold|passing (score|mark|grade|bar|percentage|standard|line|point)|pass mark|pass line|required score|score required|"
                              r"what (\w+ )?score|which score|how high|the bar|cut (is|line)|make the cut|what (percentage|percent|number))\b")


_COMPARES_WITH_THE_BAR = re.compile(r"\b(equal to or (greater|more|higher) than|(greater|more|higher) than or equal to|"
                                    r"strictly (greater|above|more|higher)|(at or|or) above|inclusive(ly)?|exclusive(ly)?|"
                                    r"(is|does) (exactly )?\d{2}(\.0+)?\s*(%|percent)? (count|pass|qualify|make it))\b")


def threshold_words_ask_the_threshold(r: _Reading, topic: Intent, question: str) -> Intent:
    """"confirm the minimum score required to apply" asks for the threshold, not whether this
    practice is eligible, as long as the practice states no score of its own."""
    f = r.ex.facts
    if topic in (Intent.MODULES, Intent.MEASURES, Intent.MULTI_SITE) and re.search(
            r"(\b(threshold|passing (score|mark|grade|bar)|cut ?off|minimum( score)?|the 75\s*%?|need (an? )?\d\d(\.\d+)?\s*%?|(need|have) to (hit|get|score|reach|clear) (an? )?\d\d(\.\d+)?\s*%?)|^\d\d(\.\d+)?\s*%?)\b.{0,40}\b(each|every|per|by|individual|on each|for each)\s+(single\s+)?(module|measure|site|location|clinic)", question):
        return Intent.SCORE_THRESHOLD  # "is there a separate passing threshold for each module?"
    if topic in (Intent.MODULES, Intent.MEASURES) and re.search(r"\b(module|measure)[- ]level\b|\b(per|each|individual|single|one) (module|measure)('s)? (score|number|result|rate)", question) \
            and re.search(r"\b(matter|matters|count|counts|apply|applies|need|needs|has to|have to|must)\b", question):
        return Intent.SCORE_THRESHOLD  # "breast module came in < 75 but overall is 80. does the module-level number matter?"
    if topic in (Intent.MODULES, Intent.MEASURES) and _THRESHOLD_WORDS.search(r.text) and re.search(
            r"\b(does|do|would|will) (it|that|this|the (\d+\s*%?|threshold|bar|cut ?off|minimum)) (only |solely |also )?(apply|count|cover)\b", question):
        # "the 75% threshold applies to the measures in aggregate. Does it apply solely to those, or to
        # every measure in every module?": "it" is the threshold the message just named.
        return Intent.SCORE_THRESHOLD
    if topic in (Intent.APPLICATION, Intent.ELIGIBILITY, Intent.VALIDITY) and f.completed_round is None and f.score is None \
            and re.search(r"\d|\b(score|oqs|percent\w*)\b", question) and re.search(
            r"\b(do|does|will|would) (qcp|asco|you|they|the program|the team) round\b|\bround(s|ed)? (it |that |the score |scores )?(up|down)\b|"
            r"\b(treated|count(ed)?|considered|read) as (meeting|passing|75)\b", question):
        r.applied.append("rounding_asks_the_threshold")
        return Intent.SCORE_THRESHOLD  # "Does QCP round the Overall Quality Score? would 74.5 be treated as meeting the 75?"
    if topic is Intent.ELIGIBILITY and f.completed_round is None and re.search(
            r"\bif (we|they|you|a practice|someone) (get|gets|got|score|scores|hit|hits|land|lands|end up (with|at))\b", question) \
            and re.search(r"\b(does (that|it) count|count as|is (that|it) enough|do (we|they) (have|need) to (beat|exceed|be over|be above|clear)|pass(es)?\b)", question):
        r.applied.append("a_hypothetical_score_asks_the_threshold")
        return Intent.SCORE_THRESHOLD  # "if we get EXACTLY 75.0 does that count or do we have to beat it?"
    if topic is Intent.ELIGIBILITY and re.search(
            r"\b(each|every|individual|single|one) (\w+ )?(measure|module)s? (has|have|needs?|must) to (hit|reach|get|score|meet|clear|be)\b", question):
        return Intent.SCORE_THRESHOLD  # "whether each certification measure has to hit 75% on its own"
    if topic is Intent.ELIGIBILITY and _COMPARES_WITH_THE_BAR.search(question) and not _OWN_SCORE.search(question):
        # "must the score be equal to or greater than 75 percent, or strictly greater?": the number is
        # the bar itself, asked about, not a score the practice reports.
        return Intent.SCORE_THRESHOLD
    if f.score is not None:
        return topic
    if topic in (Intent.ELIGIBILITY, Intent.SCORE_THRESHOLD) and re.search(r"\b(cut[- ]?off|deadline)\b", question) \
            and not re.search(r"\b(are|is) (we|our \w+|they|the practice) (still )?eligible\b", question) \
            and re.search(r"\b\d{1,2}/\d{1,2}\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? (\d{1,2}|20\d\d)\b", question):
        return Intent.VALIDITY  # "the cutoff to apply is 6/12 right?": a date, so the last day, not the threshold
    if topic is Intent.ELIGIBILITY and (_THRESHOLD_WORDS.search(question) or r.ex.threshold_question):
        return Intent.SCORE_THRESHOLD  # "is it 75 or 80 now?" asks which threshold
    if topic is Intent.VALIDITY and f.completed_round is None and _THRESHOLD_WORDS.search(r.text) \
            and not re.search(r"\b(valid|expir\w*|until|how long|last day|deadline|good for|laps\w*)\b", question):
        return Intent.SCORE_THRESHOLD  # "the passing score is going up? is it still 75?"
    return topic


def dates_make_it_validity(r: _Reading, topic: Intent, question: str) -> Intent:
    """"last day to apply using our spring 2026 numbers?" names a round and asks for a date:
    that is the validity question, even though it says "apply"."""
    f = r.ex.facts
    if topic is Intent.VALIDITY and f.score is None and f.completed_round is None \
            and re.search(r"\b(are|is) (we|our \w+|they|the practice) (still )?eligible\b", question):
        return Intent.ELIGIBILITY  # "Is our practice eligible to apply before the 12/11 deadline?": ask for the score
    if topic is Intent.APPLICATION and f.score is None and re.search(r"\b(score|oqs|result)s?\b", question) \
            and re.search(r"\b(expire\w*|expiration|valid\w*|good for|lapse\w*)\b", question):
        return Intent.VALIDITY  # "does the score expire 12 months after the report, or with the rounds?"
    if topic in (Intent.ELIGIBILITY, Intent.APPLICATION) and f.score is None and f.completed_round is None \
            and re.search(r"\bhow much (longer|more time|time)\b|\b(still|left) (have|got)\b.{0,20}\b(time|long)\b", question):
        return Intent.VALIDITY  # "how much longer do we have to get the application in?" (the round may be in the thread)
    if topic is Intent.SCORE_THRESHOLD and f.completed_round is not None and not _THRESHOLD_WORDS.search(question) \
            and re.search(r"\b(by when|until when|by what date|until what date|last day|deadline|(have|got) (any )?(longer|more time))\b", question):
        return Intent.VALIDITY  # "... and by when do we have to apply if our round was Fall 2025?"
    if (topic in (Intent.ELIGIBILITY, Intent.APPLICATION) or (topic in INFO_TOPICS and not re.search(_TOPIC_WORDS[topic], question))) \
            and f.score is None and f.completed_round is not None and not _failing(f) \
            and re.search(r"\b(last day|deadline|until when|until what|how long|expire\w*|still valid|valid until|good until|"
                          r"(final|last|closing|cut-?off|due) date|no longer be used|stops? being (usable|valid)|(still )?(in|within) the window|in time\b|"
                          r"(can|could) (we |i )?still (apply|use|submit)|timing (ok|okay|fine|work\w*|right)|is that (ok|okay|fine|too late|in time)|"
                          r"too late|how much (longer|time)|when (does|do|will) (it|our|the) |by when|by what date|no later than when|"
                          r"still (count|counts|work|works|be used|usable|good|ok|okay|fly)\b|missed (it|the (deadline|window|boat|cut-?off))\b)", question):
        return Intent.VALIDITY
    return topic


_POOL_MEMBERSHIP = re.compile(r"\b(every|all|each|everyone|everybody|any)\b.{0,60}\b(in|into|part of|from) (the |our |a )?(sampling |chart )?pool\b|"
                              r"\b(left out of|not in|n't in|missing from|excluded from|outside) (the |our )?(sampling |chart )?pool\b")


def pool_membership_is_attestation(r: _Reading, topic: Intent, question: str) -> Intent:
    """"does every heme onc at every site have to be in the sampling pool?" asks who must be in
    the pool: that is the attestation question (ELIG-ATTESTATION), though it says "sampling"."""
    about_left_out = r.ex.facts.charts_pool_complete is False and re.search(
        r"\b(left out|excluded|omitted|not in the (\w+ )?pool|(weren't|wasn't|were not|was not|aren't|isn't) in the (\w+ )?pool|missing from|"
        r"who was(n't| not) in|what (happens|then|now)|what do we do|is that (ok|okay|a problem)|does that matter)\b", question)
    if topic in (Intent.SAMPLING, Intent.MULTI_SITE, Intent.APPLICATION, Intent.CONTACT, Intent.GREETING) \
            and (_POOL_MEMBERSHIP.search(question) or about_left_out) and r.ex.facts.score is None:
        r.applied.append("pool_membership_is_attestation")
        return Intent.ATTESTATION
    return topic


# What may stand between two named things for them to be named together: "and", "or", "vs", "&", "/".
_JOINING = re.compile(r"[\s\w#]*?\b(and|or|vs\.?|versus)\b[\s\w#]*|[\s\w#]*(&|/)[\s\w#]*")
_PAIRABLE = (Intent.MEASURES, Intent.STANDARDS, Intent.MODULES, Intent.SAMPLING, Intent.ATTESTATION)


def two_topics_named_together(r: _Reading) -> None:
    """"25 measures and 20 standards, or do I have that backwards?", "# of measures / # of
    standards": two of the program's things named side by side, joined by and/or/vs, are both
    asked about, whichever one the question's own words were read as."""
    if len(r.intents) != 1 or r.intents[0] not in _PAIRABLE or len(r.text.split()) > 40:
        return
    first = r.intents[0]
    spans = {t: [m.span() for m in re.finditer(_TOPIC_WORDS[t], r.text)] for t in _PAIRABLE}
    others = [t for t in _PAIRABLE if t is not first and spans[t]]
    if len(others) != 1 or not spans[first]:
        return
    gaps = (r.text[min(a[1], b[1]):max(a[0], b[0])] for a in spans[first] for b in spans[others[0]])
    if any(len(gap.split()) <= 6 and _JOINING.fullmatch(gap) for gap in gaps):
        r.intents.append(others[0])
        r.applied.append("two_topics_named_together")


_COUNTED = {"standards": Intent.STANDARDS, "measures": Intent.MEASURES, "modules": Intent.MODULES}


def how_many_names_the_count(r: _Reading, topic: Intent, question: str) -> Intent:
    """"How many standards does that attestation cover?", "what's the measure count these days?"
    ask the count of the thing they name."""
    m = re.search(r"\b(how many|number of|# of|count of)\s+(certification |qopi |cert )?(standards|measures|modules)\b|"
                  r"\b(standards?|measures?|modules?) count\b", question)
    if not m or r.ex.facts.score is not None or topic in ESCALATIONS:
        return topic
    counted = _COUNTED[(m.group(3) or m.group(4)).rstrip("s") + "s"]
    if counted is not topic and topic in (*INFO_TOPICS, Intent.MULTI_SITE, Intent.ELIGIBILITY, Intent.GREETING):
        r.applied.append("how_many_names_the_count")
        return counted
    return topic


def greeting_only_alone(r: _Reading) -> None:
    """"hi all - can our practice apply?" is a question, not a greeting: a greeting or thanks
    is the answer only when nothing else is asked or stated."""
    if len(r.intents) > 1 and Intent.GREETING in r.intents:
        r.intents.remove(Intent.GREETING)
        r.applied.append("greeting_only_alone")


# What a question asks of the program itself; a question without any of it ("does it need to show an
# expiration date?") leans on the question before it.
_PROGRAM_CONTENT = re.compile(r"\b(eligib\w*|qualify|apply|applying|application|score|round|sites?|clinics?|offices?|threshold|cut ?off|"
                              r"pass(ing)?|sampling|measures?|modules?|standards?|attestation|polic\w*|report|deadline|\d\d(\.\d+)?\s*(%|percent))\b")


def scope(r: _Reading) -> None:
    """Out of scope needs two signs: no program vocabulary and another organization's business,
    or the model's own confident reading with nothing of ours in the message."""
    text = r.text
    in_domain = r.domain
    foreign = bool(cues._FOREIGN.search(text))
    # "unrelated to QOPI, but ..." and a nurse's own certification are not ours, whatever words they share.
    not_ours = bool(cues._UNRELATED.search(text)) or (_another_certification(text) and not _has_facts(r.ex.facts)) \
        or (bool(_CLINICAL_CARE.search(text)) and not r.domain and not _has_facts(r.ex.facts))  # "ANC cutoff before we hold FOLFOX?"
    asked = [q for q, _ in r.asked] or [text]
    if cues.MARKETING.search(text) and not _has_facts(r.ex.facts) and r.staff_topic is None \
            and any(cues.MARKETING.search(q) for q in asked) \
            and all(cues.MARKETING.search(q) or not _PROGRAM_CONTENT.search(q) for q in asked):
        # "Can we put the QOPI logo on our billboards?": what a practice does with its certification in
        # marketing is not in the program's text, so not ours to answer.
        not_ours = True
        r.applied.append("scope:marketing")
    ours = in_domain or r.program_words or _has_facts(r.ex.facts) or r.staff_topic is not None
    confidently_foreign = r.whole.confident and r.whole.intent == Intent.OUT_OF_SCOPE.value
    if (not_ours or ((foreign or confidently_foreign) and not ours)) and not any(i in ESCALATIONS for i in r.intents):
        r.intents[:] = [Intent.OUT_OF_SCOPE]
        r.applied.append("scope:not_ours")
    elif not ours and not r.whole.confident and not any(i in ESCALATIONS for i in r.intents) and (
            (r.asked and (r.intents in ([Intent.GREETING], [Intent.OUT_OF_SCOPE]) or len(text.split()) >= 6))
            or (r.whole.score < -0.3 and r.intents != [Intent.GREETING])):
        # "can you move my 3pm tumor board to thursday?": a question with nothing of the program in
        # it, which the model could only guess at. (A short follow-up in a thread is the dialogue's.)
        r.intents[:] = [Intent.OUT_OF_SCOPE]
        r.applied.append("scope:nothing_ours")
    elif Intent.OUT_OF_SCOPE in r.intents and (in_domain or _has_facts(r.ex.facts)) and len(r.intents) == 1:
        ours_reading = next((i for i in (r.whole.intent, r.whole.runner_up) if i and i != Intent.OUT_OF_SCOPE.value), None)
        r.intents[:] = [Intent(ours_reading)] if ours_reading else [Intent.GREETING]
        r.applied.append("scope:ours")
    elif Intent.OUT_OF_SCOPE in r.intents and len(r.intents) > 1:
        r.intents.remove(Intent.OUT_OF_SCOPE)


def _another_certification(text: str) -> bool:
    """A person's own certification (a nurse's OCN, board certification), not the program's."""
    return bool(cues._OTHER_CERT.search(text)) and not re.search(r"\b(qopi|qcp)\b", text)


def _has_facts(f: Facts) -> bool:
    return f.score is not None or f.completed_round is not None or f.same_policies is not None or any(
        v is not None for v in (f.pathway, f.sampling_followed, f.charts_pool_complete, f.report_received,
                                f.abstraction_complete, f.participated_round))


def _covered(intent: Intent, by: list[Intent], f: Facts) -> bool:
    """An answer already given for another question in the message covers this one."""
    if Intent.ELIGIBILITY in by and intent is Intent.SCORE_THRESHOLD:
        return True  # an eligibility answer states the threshold
    if Intent.ELIGIBILITY in by and intent is Intent.VALIDITY and f.completed_round is not None:
        return True  # and, with a round, the last day
    if intent is Intent.ELIGIBILITY and Intent.VALIDITY in by and f.score is None:
        return True
    return intent in by


def _read_one(r: _Reading, topic: Intent, question: str, sure: bool = False) -> Intent:
    """The per-question reading rules, in order, on the model's reading of one question."""
    topic = facts_make_a_case(r, topic, question)
    topic = can_we_apply_asks_eligibility(r, topic, question)
    topic = how_many_names_the_count(r, topic, question)
    topic = sites_make_it_multi_site(r, topic, question, sure)
    topic = dates_make_it_validity(r, topic, question)
    topic = pool_membership_is_attestation(r, topic, question)
    topic = next_steps_ask_the_application(r, topic, question)
    topic = report_questions_ask_the_application(r, topic, question)
    topic = counting_applications_is_multi_site(r, topic, question)
    topic = affirming_is_the_standards(r, topic, question)
    topic = who_applies_is_multi_site(r, topic, question)
    topic = what_you_need_to_decide_is_eligibility(r, topic, question)
    return threshold_words_ask_the_threshold(r, topic, question)


def read_questions(r: _Reading) -> None:
    if not r.asked:
        topic = _read_one(r, Intent(r.whole.intent), r.text)
        if topic not in r.intents:
            r.intents.append(topic)
        return
    previous: Intent | None = None
    previous_end = 0
    for index, (question, p) in enumerate(r.asked):
        start = r.text.find(question, previous_end)
        joined = previous is not None and start >= 0 and re.fullmatch(r"[\s,?]*(and|also|or|plus)?[\s,]*", r.text[previous_end:start])
        previous_end = start + len(question) if start >= 0 else previous_end
        if joined and not p.confident and len(question.split()) <= 6 and re.search(r"\b(it|that|this|them|those|one)\b", question) \
                and not any(t is not previous and re.search(w, question) for t, w in _TOPIC_WORDS.items()):
            continue  # "what is this attestation and when do we need it?": "it" is the same topic
        # A question too short or too unusual for the model is read with the whole message. A later
        # question ("Second, do we need a form for that?") keeps its own reading when the model still
        # clearly prefers it (a wide margin over the runner-up): the whole message speaks of the first.
        clear = p.confident or p.score >= r.whole.score or (index > 0 and p.margin >= 0.3 and p.score > -0.4)
        if not clear and len(question.split()) >= 6 and len(r.text.split()) >= 3 * len(question.split()) and p.margin >= 0.2 \
                and p.score >= 0:
            # A long message's context ("we are seven sites on OncoEMR") colours its whole reading;
            # a question of some length, read with a margin, says what is asked.
            clear = True
        if not clear and (p.margin >= 0.25 or (question.endswith("?") and p.margin >= 0.15)) and any(q is not p and q.confident and q.intent == r.whole.intent for _, q in r.asked):
            # "explain sampling, and also when is an attestation form needed?": the whole message
            # leans to the clear second question; the first keeps its own reading.
            clear = True
        whole_topic = Intent(r.whole.intent)
        if not clear and (question.endswith("?") or re.match(r"(and |also |so )?(what|how|which|when|why|where)\b|(also|plus|btw|oh and)\b|\+\s", question)) \
                and Intent(p.intent) in _TOPIC_WORDS and p.score > -0.5 and Intent(p.intent) is not whole_topic \
                and (whole_topic not in _TOPIC_WORDS or not re.search(_TOPIC_WORDS[whole_topic], question)) \
                and re.search(_TOPIC_WORDS[Intent(p.intent)], question):
            # "does the 75% apply to the measures only? we do a bunch of extra modules": the context
            # names modules, the question names the threshold; the question's own words decide.
            clear = True
            r.applied.append("question_names_its_topic")
        topic = Intent(p.intent) if clear else whole_topic
        if topic in ESCALATIONS and topic not in r.intents:
            # A weak escalation reading of one question the escalation rule did not accept: the
            # question still asks something, most likely its runner-up.
            source = p if clear else r.whole
            if not source.runner_up or Intent(source.runner_up) in ESCALATIONS:
                continue
            if not clear and r.intents:
                continue  # "how does sampling work? like do we just grab any charts??": the unclear one elaborates
            topic = Intent(source.runner_up)
        topic = _read_one(r, topic, question, sure=p.confident)
        runner = Intent(p.runner_up) if p.runner_up else None
        taken = topic in r.intents or any(q is not p and q.confident and q.intent == topic.value for _, q in r.asked)
        if taken and (topic in INFO_TOPICS or topic is Intent.MULTI_SITE) and runner is not None and runner not in r.intents and runner in _TOPIC_WORDS \
                and re.search(_TOPIC_WORDS[runner], question) and p.margin < 0.6:
            # Two questions in one message rarely ask the same thing: "do we have to sample from
            # every module? and do we submit the breast module?" - the first is about sampling.
            topic = runner
            r.applied.append("second_question_second_topic")
        previous = topic
        if any(i in ESCALATIONS for i in r.intents) and topic in (Intent.CONTACT, Intent.GREETING):
            continue  # "can someone call me? what's your number?" is one request
        if not _covered(topic, r.intents, r.ex.facts):
            r.intents.append(topic)


_ANSWERABLE = (Intent.ELIGIBILITY, Intent.SCORE_THRESHOLD, Intent.VALIDITY, Intent.APPLICATION, Intent.MULTI_SITE,
               Intent.SAMPLING, Intent.ATTESTATION, Intent.MODULES, Intent.MEASURES, Intent.STANDARDS)


def _runner_up_named_too(r: _Reading, intents: list[Intent]) -> Intent | None:
    """"Which measures go into the 75%?": two readings nearly tied, and the message names each
    topic in its own words. Two short answers serve better than a question back."""
    w = r.whole
    if len(intents) != 1 or w.confident or w.margin >= 0.08 or w.runner_up is None or Intent(w.intent) is not intents[0]:
        return None
    first, second = Intent(w.intent), Intent(w.runner_up)
    if first in _TOPIC_WORDS and second in _TOPIC_WORDS and first is not Intent.CONTACT and second is not Intent.CONTACT \
            and re.search(_TOPIC_WORDS[first], r.text) and re.search(_TOPIC_WORDS[second], r.text):
        return second
    return None


def _doubt(r: _Reading, intents: list[Intent], ex: Extraction) -> Intent | None:
    """Two readings nearly tied, nothing stated to tell them apart, no rule settled it: the
    runner-up, so the dialogue can ask one short question instead of guessing."""
    if len(intents) != 1 or r.applied or _has_facts(ex.facts) or any(p.confident for _, p in r.asked):
        return None
    if not (r.domain or r.program_words):
        return None  # nothing of the program in it: not a choice between two program answers
    w = r.whole
    if w.confident or w.margin >= 0.08 or w.runner_up is None or Intent(w.intent) is not intents[0]:
        return None
    first, second = Intent(w.intent), Intent(w.runner_up)
    if first in _ANSWERABLE and second in _ANSWERABLE and {first, second} != {Intent.ELIGIBILITY, Intent.SCORE_THRESHOLD}:
        return second
    return None


# "I just wanted to introduce myself before I start sending real questions", "no question yet!":
# the writer says the message asks nothing.
_INTRODUCTION = re.compile(r"\b(no (real )?questions? (yet|for now|today|at the moment|right now)|"
                           r"just (wanted|want|writing|reaching out) to (say hello|say hi|introduce|check in|make sure|test)|"
                           r"introduce myself|(before|until) i (start|send|bother|pester)\w*|"
                           r"(make|making) sure (this|it|my (message|email|note)) (reaches|gets to|goes to|is going to)|(the )?right (place|address|inbox|person) (for|before)|"
                           r"before (our|my|the) [^.?!]{0,40}\b(sends?|sending) [^.?!]{0,25}\bquestions)\b")


_JOIN = re.compile(r",?\s+(?:and|also|plus|&)\s+(?:also\s+)?|,\s+(?=(?:we|i|our|does|do|is|are|can|must|should)\b)")
_SPLITTABLE = (Intent.SCORE_THRESHOLD, Intent.VALIDITY, Intent.SAMPLING, Intent.ATTESTATION, Intent.MODULES,
               Intent.MEASURES, Intent.STANDARDS, Intent.CONTACT, Intent.APPLICATION)


def two_questions_joined(read: Callable[[str], Prediction], question: str) -> list[str]:
    """"what is the minimum score, and we must do the breast module even if we have few breast
    patients?": one sentence, two questions joined by "and" with no question word to split on.
    Split only where each half is read, on its own and clearly, as a different topic of the
    program and names that topic in its own words; otherwise the sentence stays whole."""
    for joint in _JOIN.finditer(question):
        left, right = question[:joint.start()].strip(" ,"), question[joint.end():].strip(" ,")
        if len(left.split()) < 3 or len(right.split()) < 4:
            continue
        first, second = read(left), read(right)
        if not (first.confident and second.confident) or first.intent == second.intent:
            continue
        topics = (Intent(first.intent), Intent(second.intent))
        if all(t in _SPLITTABLE for t in topics) and all(
                t not in _TOPIC_WORDS or re.search(_TOPIC_WORDS[t], half) for t, half in zip(topics, (left, right))):
            return [left, right]
    return [question]


_SKIPPED_MODULE = re.compile(r"\b(skip\w*|didn't (do|submit|report)|did not (do|submit|report)|left out|leave out|not (submit\w*|report\w*|do(ing)?)|"
                             r"don't (do|submit|report)|never (did|submitted|reported))\s+(on\s+)?(the\s+|our\s+|a\s+)?(\w+\s+)?modules?\b")


# "I'm not sure if the two satellite offices follow the same P&Ps": said in doubt, so no model reads it as stated.
_HEDGED_POLICIES = re.compile(r"\b(not sure|unsure|don't know|do not know|no idea|unclear|not certain|(isn't|aren't|wasn't) (sure|certain)|wondering)"
                              r"( if| whether)?[^.?!]{0,60}\b(polic\w*|procedures|p&ps?)\b")
_CLINICAL_CARE = re.compile(r"\b(folfox|folfiri|carboplatin|cisplatin|pembro\w*|nivolumab|chemo hold|hold (the )?chemo|anc|neutrophil\w*|"
                            r"dose|dosing|regimen|premedicat\w*|antiemetic\w*|transfus\w*|infusion reaction|neutropeni\w*|platelets?)\b")


# A failed or pending condition is stated with one of these (negation, waiting, leaving out, another
# track...): of the 643 labelled messages that state a condition, all but one have one (and that one,
# "final_report=N", is read by the checklist pattern). Without any, the condition model is not asked:
# it would cost a tenth of a millisecond for nothing.
_MAY_STATE_A_CONDITION = re.compile(r"n't\b|\b(not|no|never|without|yet|pending|wait\w*|await\w*|skip\w*|miss\w*|exclud\w*|left|leave|"
                                    r"omit\w*|only|partial\w*|prelim\w*|draft|interim|instead|regular|standard|other|another|own|"
                                    r"half\w*|quit|incomplete|unfinished|behind|hand|picked|convenience|internal|locums?|retired|leave|"
                                    r"dropped|short|fewer|missing|still|but|however|though|although|except|"
                                    r"option|route|version|flavor|side)\b")  # "the benchmarking option", another track


def learn_conditions(r: _Reading, kb: Knowledge) -> None:
    """A condition stated in words no pattern knows ("we did the reg QOPI track") is read by the
    condition model, for the facts patterns left unknown; the verdict then says why."""
    for fact, value in conditions.read(kb, r.text).items():
        if getattr(r.ex.facts, fact) is None and fact not in r.ex.hedged:
            setattr(r.ex.facts, fact, value)
            r.applied.append(f"condition_model:{fact}")


def understand(raw: str, today: dt.date, kb: Knowledge, pending: MissingFact | None = None) -> Understanding:
    """What `raw` asks and states; a message read before (same day, same fact awaited, same
    knowledge) is answered from memory (qopi_bot.understanding.memo)."""
    readings: Readings[Understanding] = readings_for(kb)  # type: ignore[assignment]
    return readings.get((raw, today, pending), lambda: read_message(raw, today, kb, pending))


def read_message(raw: str, today: dt.date, kb: Knowledge, pending: MissingFact | None = None) -> Understanding:
    """The reading itself, every step run (understand remembers its results)."""
    text, lines = clean(raw)
    model: IntentModel = model_for(kb)
    ex = extract(text, today, expecting_score=pending is MissingFact.SCORE)
    ex.text = text
    learned: list[str] = []
    if ex.facts.same_policies is None and "same_policies" not in ex.hedged and not _HEDGED_POLICIES.search(text):
        # No pattern matched how the sites' policies were described ("runs on the hospital's policies,
        # not ours"): the statement model learned from knowledge/statements/ reads it, when clearly sure.
        value, _ = statements.read(kb, "same_policies", text)
        if value is not None:
            ex.facts.same_policies = value
            learned.append("statement_model:same_policies")
    answered_pending = cues.answer_to_pending(text, pending, ex)
    # Each text is read once: a one-question message is its own question, and the halves tried for a
    # question joined by "and" are the questions asked when it splits.
    read_as: dict[str, Prediction] = {}

    def read(q: str) -> Prediction:
        return read_as[q] if q in read_as else read_as.setdefault(q, model.predict(q))

    whole = read(text)
    asked_texts = [half for line in lines for q in questions(line) for half in two_questions_joined(read, q)]
    staff_topic = cues.unpublished(text, [(e.id, e.keywords) for e in kb.unpublished])
    r = _Reading(text=text, ex=ex, whole=whole,
                 asked=[(q, read(q)) for q in asked_texts[:6]],
                 escalation_strength=cues.escalation_strength(text), staff_topic=staff_topic,
                 domain=bool(cues._DOMAIN.search(text)), program_words=bool(cues._PROGRAM_WORDS.search(text)))
    r.applied.extend(learned)
    escalation_first(r)
    read_questions(r)
    two_topics_named_together(r)
    greeting_only_alone(r)
    scope(r)
    intents = list(dict.fromkeys(r.intents))
    if Intent.ELIGIBILITY in intents and ex.facts.score is not None and intents[0] is not Intent.ELIGIBILITY \
            and intents[0] not in ESCALATIONS:
        # "85%, fall 2025; no idea what they did on sampling. Eligible?": with the case stated, the
        # verdict leads and the other answers follow.
        intents.remove(Intent.ELIGIBILITY)
        intents.insert(0, Intent.ELIGIBILITY)
    if Intent.ELIGIBILITY in intents and Intent.VALIDITY in intents and ex.facts.score is not None \
            and ex.facts.completed_round is not None:
        # "86 in fall 2025 - is today the last day? can we still apply?": the verdict states the
        # last day too, so the eligibility answer covers both and leads.
        intents.remove(Intent.VALIDITY)
        intents.remove(Intent.ELIGIBILITY)
        intents.insert(0, Intent.ELIGIBILITY)
    if Intent.ELIGIBILITY not in intents and ex.facts.score is not None and ex.facts.completed_round is not None \
            and re.search(r"\b(eligib\w*|qualif\w*)\b", text) and not any(i in ESCALATIONS for i in intents) \
            and Intent.SCORE_THRESHOLD not in intents and Intent.VALIDITY not in intents:
        # "Scored 88 in fall 2025. If that makes us eligible, what do we sign off on at payment?": the
        # case they state gets its verdict first.
        intents.insert(0, Intent.ELIGIBILITY)
        r.applied.append("a_stated_case_gets_its_verdict")
    if Intent.MULTI_SITE in intents and Intent.ELIGIBILITY not in intents and ex.facts.score is not None and _OWN_SCORE.search(text) \
            and not any(i in ESCALATIONS for i in intents):
        # "we got 77 in fall 2025 and our 3 sites share the same policies - apply separately or
        # together?": the score they state gets its verdict too.
        intents.append(Intent.ELIGIBILITY)
        r.applied.append("a_stated_score_gets_its_verdict")
    if Intent.ELIGIBILITY in intents and Intent.MODULES not in intents and _SKIPPED_MODULE.search(text):
        # "81% but we skipped the lung module entirely - does that make us ineligible?": the verdict,
        # and what the program says of modules.
        intents.append(Intent.MODULES)
        r.applied.append("a_skipped_module_is_a_modules_question")
    intents = intents[:MAX_QUESTIONS]
    if Intent.ELIGIBILITY in intents[:2] and ex.facts.score is not None and _MAY_STATE_A_CONDITION.search(text):
        # Only beside a stated score: a bare "can we apply yet?" opens a thread whose facts are
        # still to come, and a condition misread there would stay with the whole thread.
        learn_conditions(r, kb)
    message_asks = bool(asked_texts) or bool(cues._QUESTION.search(text))
    intent: Intent | None = intents[0] if intents else None
    # A reply to the bot's question that asks nothing new carries no intent of its own: the
    # thread's topic continues ("77, but two oncologists' charts were left out").
    if answered_pending and (not message_asks or intent is Intent.GREETING or (not whole.confident and not asked_texts)):
        intent, intents = None, []
    elif not message_asks and intent not in ESCALATIONS and _has_facts(ex.facts) and not whole.confident \
            and Intent(whole.intent) not in (Intent.ELIGIBILITY, Intent.VALIDITY, Intent.MULTI_SITE):
        intent, intents = None, []  # bare facts ("fall 2025, 81%"): the dialogue decides the topic
    introduces = bool(_INTRODUCTION.search(text)) and not _has_facts(ex.facts)
    if not message_asks and intent not in (None, Intent.OUT_OF_SCOPE, *ESCALATIONS) and (introduces or (
            not whole.confident and not _has_facts(ex.facts) and not answered_pending and cues.reminder_request(text) is None
            and not r.program_words and not re.search(r"\b(eligib\w*|sampling|attestation|pathway|abstraction|oqs)\b", text))):
        # "Hi! I'm the new front desk person, I'll be pestering you this week": no question, no
        # facts, nothing the model is sure of - an introduction, answered as a greeting.
        intent, intents = Intent.GREETING, [Intent.GREETING]
        r.applied.append("nothing_asked_is_a_greeting")
    escalation = next((i for i in intents if i in ESCALATIONS), None)
    named = _runner_up_named_too(r, intents)
    if named is not None:
        intents.append(named)
        r.applied.append("both_readings_named")
    doubt = _doubt(r, intents, ex)
    nothing_ours = not (r.domain or r.program_words or _has_facts(ex.facts) or staff_topic)
    direct_question = any(re.match(r"((and|also|so|ok|okay|but|btw|oh|hey)\W+)*(what|what's|whats|how|when|which|who|where|why)\b", q)
                          and not re.search(r"[\"“”]", q) for q in asked_texts)
    return Understanding(doubt=doubt, direct_question=direct_question, sure=whole.confident or any(p.confident for _, p in r.asked), nothing_ours=nothing_ours,
        text=text, intent=intent, intents=intents, confidence=round(whole.score, 3),
        runner_up=Intent(whole.runner_up) if whole.runner_up else None,
        facts=ex.facts, problems=ex.problems, threshold_question=ex.threshold_question,
        in_domain=(r.domain or (whole.intent != Intent.OUT_OF_SCOPE.value and whole.score > 0.2))
        and not cues._UNRELATED.search(text) and not _another_certification(text),
        answered_pending=answered_pending, asks=message_asks,
        mentions_attachment=bool(cues._ATTACHMENT.search(text)),
        unpublished_topic=staff_topic,
        asks_round_dates=bool(re.search(r"\bwhen (does|do|will|is)\b.{0,30}\bround\b.{0,20}\b(open|close|start|end|due)|(?<!to the )\bround (dates?|schedule|calendar|deadlines?)\b|\bwhen is the (next )?(\w+ )?round\b|\bwhen('s| is) the next\b", text)),
        escalation=escalation, rules_applied=r.applied, own_score=bool(_OWN_SCORE.search(text)) and not _GENERAL.search(text),
        reminder=cues.reminder_request(text), reminder_days=cues.reminder_lead_days(text),
        asks_integration_evidence=not re.search(r"\b(apply as (one|a single)\b[^.?!]{0,30}\bor\b|one application or|separate (practices|applications|entities)\?|together or separately)", text) and bool(re.search(r"\b(proof|prove|show|demonstrate|evidence|document\w*|papers)\b.{0,100}\b(integrat|connected|linked|(tied|knit|knitted|joined|bound|stitched|woven|glued|held|pulled|brought|bolted) together|unified|work(ing)? together|function(ing)? as one|as one (practice|entity)|(really |actually |truly )?one (practice|entity))", text)
                                     or (re.search(r"\bcount as (integrated|one (practice|entity))", text)
                                         and re.search(r"\b(enough|sufficient|suffice|need|needs|have to|has to|must|required?|proof|evidence)\b", text))
                                     or re.search(r"\bintegrat\w*\b.{0,80}\b(proof|prove|evidence|document\w*|demonstrate)\b", text)
                                     or re.search(r"\b(tax id|emr|ehr|staff rotat\w*)\b.{0,40}\b(by itself|on its own|alone|dispositive|decisive|determinative|enough|sufficient|suffice)", text)
                                     or re.search(r"\b(have to|need to|must|need|needs|require|requires|required)\b.{0,30}\b(rotate|share (an? |one )?(emr|ehr)|(same|one|single|a single|common) (tax id|emr|ehr))", text)),
    )

