"""Text -> intent + facts. Deterministic: weighted patterns, no network model.

Each intent has cue patterns with weights; the highest total wins, ties broken by a fixed
priority. A message with no cue at all gets intent None, and the dialogue decides whether
it continues the current topic (a bare "Fall 2025") or is unclear (then it asks)."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, Field

from qopi_bot.extraction import Extraction, Problem, extract
from qopi_bot.models import Facts, Intent, MissingFact
from qopi_bot.normalize import normalize

_W = list[tuple[float, re.Pattern[str]]]


def _cues(*pairs: tuple[float, str]) -> _W:
    return [(w, re.compile(p)) for w, p in pairs]


_PERSON = r"(a |an |some |real |actual |live )?(person|human|someone|somebody|staff( member)?|representative|rep|agent|team member|coordinator|real person|human being)"

CUES: dict[Intent, _W] = {
    Intent.HUMAN: _cues(
        (6, rf"\b(talk|speak|chat)\s+(to|with)\s+{_PERSON}\b"),
        (6, r"\b(can|could|would|will|please have)\s+(a |an |the |one of your |some )?(someone|somebody|person|staff( member)?|team member|human|representative|coordinator)\s+(\w+\s+){0,2}(call|contact|email|phone|reach out to|get back to|get in touch with)\s+(me|us)\b"),
        (6, r"\b(get|have|ask)\s+(a |an |some |one of your |the )?(staff( member)?|person|human|someone|somebody|representative|coordinator|team member)\s+(to\s+)?(look at|review|check|help|handle|call|contact|read)"),
        (6, rf"\b(connect|transfer|put)\s+(me|us)\s+(through\s+)?(to|with)\s+{_PERSON}"),
        (5, r"\b(real|actual|live) (person|human)\b|\bhuman (please|pls)\b|\b(a|an actual) human\b"),
        (5, r"\b(can|could|would|please have)\s+(someone|somebody|a person|staff|your team|the team)\s+(\w+\s+){0,2}(call|contact|email|reach out to|get back to|phone)\s+(me|us)"),
        (6, r"\b(call ?back|call me back|ring me back|phone call from (someone|your team|staff)|(discuss|talk about) (it|this) (by|over the|on the) phone)\b"),
        (4, r"\b(call|phone|ring)\s+(me|us)\b(?! ?\w* (if|when))|\bescalate\b|\bneed (a|to talk to a) (person|human)|\brepresentative\b"),
        (3, r"\b(want|need|like|prefer)\s+(to\s+)?(talk|speak)\s+(to|with)\b|\bnot a (bot|robot)\b|\bare you (a )?(bot|human|robot)"),
    ),
    Intent.SUBSET: _cues(
        (6, r"\bsubset\b"),
        (5, r"\b(only|just|solely)\b.{0,40}\b(site|clinic|location|office|campus|program|department|center|unit|suite|division)s?\b.{0,25}\bcertif"),
        (6, r"\b(only|just|solely)\s+(want\s+to\s+|wish\s+to\s+|like\s+to\s+|plan\s+to\s+|hoping\s+to\s+)?(certify|certified|certification for|get certified|apply for)\s+([\w/&'-]+\s+){0,4}(site|location|office|clinic|campus|program|department|division|part|portion|center|unit)"),
        (6, r"\b(certify|certified|certification for|apply for)\s+(only|just)\s+(one|our|the|a|some|part|two|three|a few)\b"),
        (5, r"\b(without|excluding|but not|not) (the rest of|the whole|our whole|the entire|our entire|all of) (the |our )?(practice|group|organization|network|system)\b"),
        (5, r"\b(part|portion|some|one|two|a few|certain) of (our|the) (practice|sites|locations|clinics|offices|group)\b.{0,40}\b(certif|apply)"),
        (4, r"\b(certif\w*|apply)\b.{0,60}\b(part|portion|piece) of (our|the) (practice|group|organization)\b"),
        (4, r"\b(\w+ )?(program|department|clinic|site|location|division|service line) (alone|by itself|on its own|separately)\b.{0,40}\b(certif|apply)|\b(certif\w*|apply)\b.{0,60}\b(alone|by itself|on its own)\b"),
        (4, r"\b(leave|leaving|exclude|excluding|carve|carving|drop|dropping) (out )?(one|a|some|two|our|the)\s+(\w+\s+)?(site|location|office|clinic|campus)s?\b(?!.{0,30}\bcharts?\b)"),
        (6, r"\bonly (\d+|one|two|three|four|some|a few|part|a couple) of (our|the) (\d+ |\w+ )?(sites|locations|clinics|offices|campuses)\b"),
        (5, r"\bonly (our|the|one|a) (\w+\s+){0,3}(site|location|office|clinic|campus|program|department)s? (\w+\s+){0,2}(certified|certify|to be certified)|\bget (only|just) "),
        (5, r"\bnot the (other|rest of the) (\w+ )?(sites|locations|clinics|offices|campuses)\b"),
        (3, r"\bnot the whole practice\b|\bonly (one|some|two|three|a few|a couple) of (our )?(sites|locations|clinics|offices)\b"),
    ),
    Intent.EXCEPTION: _cues(
        (6, r"\bexceptions?\b|\bwaiver\b|\bwaive\b|\bexempt(ion)?\b"),
        (4, r"\bspecial (circumstance|case|situation|consideration)s?\b|\bunusual (circumstance|situation)s?\b|\bmake an allowance\b"),
    ),
    Intent.MULTI_SITE: _cues(
        (4, r"\b(\d+|two|three|four|five|six|seven|eight|nine|ten|several|multiple|many|different|all|each|every|other|our|a few|a couple of|some|both)\s+(\w+\s+)?(office\s+)?(sites|locations|offices|clinics|campuses|satellites)\b"),
        (5, r"\bper (office )?(site|location|office|practice)\b|\bawarded to\b|\bindividual (sites|offices|locations|clinics)\b"),
        (4, r"\b(one|a single|the same|separate|one combined|multiple) applications?\b"),
        (4, r"\b(apply|certif\w*|count)\s+(\w+\s+){0,3}(separately|as one|together|as a single|as separate|as one entity|individually)\b|\bone entity\b|\bseparate entit(y|ies)\b"),
        (5, r"\bfunctionally integrated\b|\bintegrat\w*\b"),
        (4, r"\baffiliat\w*\b|\bloose(ly)?\b|\btax id\b|\b(common|shared|same) (emr|ehr)\b|\bnetwork of\b"),
        (3, r"\bsame polic(y|ies)\b|\bown polic(y|ies)\b|\bpolicies and procedures\b"),
        (3, r"\b(site|location|office|clinic)s?\b.{0,40}\b(individually|separately|each)\b|\bwhole practice\b|\bwho (can|should) apply\b|\bhow (do|should) we apply\b"),
    ),
    Intent.VALIDITY: _cues(
        (5, r"\buntil what (date|day|point)\b|\bwhat date\b.{0,30}\bvalid\b|\b(still )?valid\b|\bvalidity\b|\bexpir\w*\b|\bgood (for|until|till)\b|\buntil when\b|\bstill (good|count|usable|current)\b"),
        (4, r"\bhow long\b.{0,40}\b(score|result)s?\b|\b(score|result)s?\b.{0,40}\bhow long\b|\b(last|final) day\b|\bdeadline\b|\buse (our|the|that|this) (score|result)s?\b"),
        (3, r"\bwhen (does|do|will)\s+(our|the|that|this|a)\s+(\w+\s+)?(score|result)s?\s+(run out|lapse|end|stop)|\btoo late\b|\bstill (apply|use)\b|\bhow much time\b"),
        (4, r"\b(roll|carry|carried|rolls) (over|forward)\b"),
        (5, r"\blaps(e|es|ed|ing)\b|\brun out\b|\bgo stale\b|\btime out\b"),
        (5, r"\b(score|result)s?\b.{0,40}\bstill (ok|okay|good|fine|usable)\b|\b(ok|okay|fine) to use\b"),
    ),
    Intent.ELIGIBILITY: _cues(
        (6, r"\beligib\w*\b|\bineligible\b|\bqualif(y|ied|ies)\b"),
        (4, r"\b(can|could|may|are) (we|i) (still )?(apply|qualify|go ahead|be certified|get certified|submit)\b|\bgood to (apply|go)\b|\b(allowed|able) to apply\b"),
        (4, r"\b(enough|sufficient|good enough|high enough)\b|\bdo we pass\b|\bdid we pass\b|\bdo we (make|meet) (it|the (cut|bar|threshold))\b|\bwill that do\b|\bdoes (that|this) (count|pass)\b"),
        (4, r"\b(still|is that|is this|are we) (ok|okay|good|fine|alright)\b"),
        (5, r"\b(can|could|should|may) (we|i) (go for|pursue|get|seek|try for|go after|aim for) (qopi |the |our )?(certification|certified|qcp|cert)\b"),
        (2, r"\bwhere do we stand\b|\bcan we (get|become) (qopi )?certified\b|\bam i (ok|okay)\b|\bare we (ok|okay|good|set)\b"),
    ),
    Intent.SCORE_THRESHOLD: _cues(
        (5, r"\bwhat (overall )?(score|percentage|percent|quality score|oqs)\b.{0,40}\b(need|required|have to|must|get|achieve|pass)\b|\bthreshold\b|\bcut ?off\b"),
        (5, r"\bpassing (mark|score|grade|threshold|bar|rate|percentage)\b|\bmin(imum)? (overall )?(quality )?(score|percentage|oqs|pass(ing)? score)\b|\bpass mark\b"),
        (4, r"\bround(ed|s|ing)? (it |\d+(\.\d+)?%? )?up\b"),
        (3, r"\b(count|counts|counted) as (a )?pass(ing)?\b|\bis (that|this|it) (a )?pass(ing)?\b"),
        (4, r"\bhow (high|much)\b.{0,30}\bscore\b|\bscore (do we|we) need\b|\b(need|required) to (score|get|pass)\b|\bwhat('s| is) the (required|minimum|passing) \w+"),
    ),
    Intent.APPLICATION: _cues(
        (5, r"\bapplication\b|\bhow (do|can|should) (we|i) apply\b|\bwhen can (we|i) (apply|submit)\b"),
        (6, r"\b(before|after|until|without) (we (get|receive|have)|getting|receiving|having|the|our) (the |our )?(final )?(\w+ )?report\b|\bwait for (the|our) (final )?(\w+ )?report\b"),
        (3, r"\bapply for (qopi )?certification\b"),
        (4, r"\bsubmit\w*\b|\bpay(ment|ing)?\b|\bfees?\b|\bcost\b|\bhow much\b|\bwhen (does|do|will) (the )?(\w+ )?round\b|\bnext round\b|\bround (dates?|schedule|calendar)\b"),
        (1, r"\bapply\b|\bnext steps?\b|\bwhat (happens|do we do) next\b|\bprocess\b"),
    ),
    Intent.SAMPLING: _cues(
        (6, r"\bsampl\w*\b"),
        (4, r"\bhow many charts\b|\bchart (requirements?|targets?|numbers?|counts?)\b|\btarget (chart|number)s?\b|\bnumber of charts\b"),
    ),
    Intent.ATTESTATION: _cues(
        (9, r"\battest\w*\b"),
        (5, r"\b(need|fill out|fill in|complete|submit|file|sign) (a |an |the |any |some )?(\w+ )?(form|paperwork|document)\b"),
    ),
    Intent.MODULES: _cues(
        (5, r"\bmodules?\b"),
        (2, r"\bwhich (disease|cancer) (sites|types)\b|\bbreast, lung\b"),
    ),
    Intent.MEASURES: _cues(
        (5, r"\bmeasures?\b(?!\s+up)"),
        (3, r"\bwhat (is|gets) (measured|scored)\b|\bhow is the score (calculated|computed)\b"),
    ),
    Intent.STANDARDS: _cues(
        (5, r"\bstandards\b|\bcertification standard\b"),
        (12, r"\b(attest|affirm)\w*\b.{0,40}\bpolic|\bpolic(y|ies)\b.{0,40}\b(attest|affirm)"),
        (3, r"\baffirm\w*\b|\bpolicies (we|do we) need\b"),
    ),
    Intent.CONTACT: _cues(
        (5, r"\b(phone|telephone) (number|#|no\.?)|\bemail address\b|\bcontact (info|information|details|you|the team|qcp|someone|the (qopi|qcp|help))\b"),
        (4, r"\bwho (do|should|can) (i|we) (email|call|contact|write to|reach)\b|\bhow (do|can) (i|we) (reach|contact|get in touch)\b|\bhelp ?desk\b|\b(email|call) (the )?(team|qcp)\b"),
        (2, r"\bemail\b|\bphone\b|\bcontact\b|\bnumber for\b"),
        (4, r"\b(portal|password|log ?in|locked out|user ?name|account access)\b"),
    ),
    Intent.GREETING: _cues(
        (3, r"^(hi|hello|hey|hiya|howdy|(good )?(morning|afternoon|evening)|greetings|yo)\b"),
        (3, r"^(thanks|thank you|thx|ty|cheers|much appreciated|great,? thanks|perfect,? thanks|ok thanks)\b"),
        (2, r"\bwhat can you (do|help with)\b|\bhelp\b$|^help\b|\bwho are you\b|\bwhat are you\b"),
    ),
}

# When two intents score the same, the more specific one wins.
PRIORITY = [
    Intent.HUMAN, Intent.SUBSET, Intent.EXCEPTION, Intent.ATTESTATION, Intent.VALIDITY,
    Intent.ELIGIBILITY, Intent.SCORE_THRESHOLD, Intent.MULTI_SITE, Intent.SAMPLING,
    Intent.APPLICATION, Intent.MODULES, Intent.MEASURES, Intent.STANDARDS, Intent.CONTACT,
    Intent.GREETING,
]

# Words that tie a message to the certification program (generic oncology words do not).
_DOMAIN = re.compile(
    r"\b(qopi|qcp|certif\w*|oqs|quality score|pathway|abstraction|eligib\w*|collection round|"
    r"sampling|attestation)\b"
)
_QUESTION = re.compile(
    r"\?|^((also|and|oh|so|ok|okay|btw|hey|hi|hello|actually|um|well|sorry|thanks|one more thing|quick q(uestion)?)[,:!.\s-]+)*"
    r"(can|could|is|are|do|does|did|what|what's|when|how|who|which|why|should|may|will|would|where)\b"
    r"|^(\S+\s+){0,3}(what|what's|when|how|who|which|why|where)\b")
# Other organizations' business (payers, billing, meetings) is not ours, whatever the question words.
_FOREIGN = re.compile(r"\b(aetna|cigna|humana|unitedhealth\w*|blue cross|bcbs|medicare|medicaid|cms|payer|insurer|insurance|"
                      r"prior auth\w*|billing|coding|icd-?10|cpt|annual meeting|conference|pharmacy|formulary)\b")
# Certifications of people (nurses, physicians) are not QOPI Certification of a practice.
_OTHER_CERT = re.compile(r"\b(ons|oncc|ocn|aocn|cpr|bls|acls|nursing|nurse'?s?|board|her|his|my personal|biotherapy|provider card)\b.{0,40}\bcertif")
_UNRELATED = re.compile(r"\b(unrelated to|not (about|related to) (qopi|certification|the certification)|off[- ]topic|nothing to do with (qopi|certification))\b")
_FILLER = re.compile(r"^((honestly|well|um|uh|so|actually|hmm|ok|okay|oh|sorry|i mean|i think)[,.!\s-]+)+")
_YES = re.compile(r"^(yes|yeah|yep|yup|y|correct|right|that's right|that is right|true|sure|absolutely|indeed|affirmative|we do|we did|they do|they did|it is|it was|of course|definitely|all of them|all do|all sites do)\b")
_NO = re.compile(r"^(no|nope|nah|n|not really|negative|we don't|we do not|we didn't|we did not|they don't|they do not|they didn't|it isn't|it wasn't|none|not yet|not all)\b")
_ATTACHMENT = re.compile(r"\b(attached|attachment|enclosed|see (the )?(file|pdf|spreadsheet|document))\b")

_YES_NO_FACT = {
    MissingFact.PATHWAY: "pathway", MissingFact.SAMPLING: "sampling_followed",
    MissingFact.CHARTS_POOL: "charts_pool_complete", MissingFact.REPORT: "report_received",
    MissingFact.SAME_POLICIES: "same_policies",
}


class Understanding(BaseModel):
    text: str  # normalized
    intent: Intent | None  # None: no cue at all (a bare fact, or unclear)
    scores: dict[str, float] = Field(default_factory=dict)
    facts: Facts = Field(default_factory=Facts)
    problems: list[Problem] = Field(default_factory=list)
    threshold_question: bool = False
    in_domain: bool = False
    asks: bool = False  # the message asks something (a question mark or a question word first)
    answered_pending: bool = False  # the message answers the question the bot asked
    mentions_attachment: bool = False
    unpublished_topic: str | None = None
    asks_round_dates: bool = False



_SENTENCE = re.compile(r"[^.?!\n]*\?|[^.?!\n]+[.!\n]?")


def question_sentences(text: str) -> list[str]:
    """The sentences that ask: in a long email, what surrounds them is context."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    if len(sentences) < 2:
        return []
    return [s for s in sentences if s.endswith("?") or re.match(r"(can|could|what|what's|when|how|who|which|why|where|is|are|do|does)\b", s)]


def classify(text: str) -> dict[Intent, float]:
    scores: dict[Intent, float] = {}
    asked = " ".join(question_sentences(text))
    for intent, cues in CUES.items():
        total = sum(weight for weight, pattern in cues if pattern.search(text))
        if asked:  # cues inside the question count twice
            total += sum(weight for weight, pattern in cues if pattern.search(asked))
        if total:
            scores[intent] = total
    return scores


_INFO_QUESTION = re.compile(
    r"\b(what (is|are|does)|what's|how many|which|explain|tell me about|what do (we|i) need to know about)\b.{0,40}"
    r"\b(attestation|sampling|modules?|measures?|standards|threshold|application process)\b")


def _pick(scores: dict[Intent, float], ex: Extraction) -> Intent | None:
    if not scores:
        return None
    # Facts sharpen the choice: a score or a failing fact turns a generic question into "are we eligible?".
    has_case_facts = ex.facts.score is not None or any(
        v is False for v in (ex.facts.pathway, ex.facts.sampling_followed, ex.facts.participated_round))
    info_topics = (Intent.SAMPLING, Intent.ATTESTATION, Intent.MODULES, Intent.MEASURES, Intent.STANDARDS,
                   Intent.APPLICATION, Intent.SCORE_THRESHOLD)
    if ex.facts.score is not None and not ex.threshold_question:
        top = max(scores.values())
        leader = next(i for i in PRIORITY if scores.get(i) == top)
        # "78.5 on the pathway, all charts in the pool, sampling followed, can we apply?" is an
        # eligibility question even without the word "eligible".
        if leader in info_topics and not _INFO_QUESTION.search(ex.text):
            scores[Intent.ELIGIBILITY] = top + 1
    if has_case_facts and Intent.ELIGIBILITY in scores:
        # "we followed sampling, scored 84%, are we eligible?": the facts describe the case,
        # the question is eligibility.
        top_info = max((scores[i] for i in info_topics if i in scores), default=0)
        scores[Intent.ELIGIBILITY] = max(scores[Intent.ELIGIBILITY], top_info + 1)
    if has_case_facts and not ex.threshold_question and (
            Intent.ELIGIBILITY in scores or Intent.SCORE_THRESHOLD in scores or Intent.APPLICATION in scores):
        scores[Intent.ELIGIBILITY] = scores.get(Intent.ELIGIBILITY, 0) + 3
    if Intent.SCORE_THRESHOLD in scores and Intent.ELIGIBILITY in scores and not has_case_facts:
        scores[Intent.SCORE_THRESHOLD] += 3  # "what score do we need to qualify?" asks for the threshold
    if ex.facts.same_policies is not None and not has_case_facts:
        scores[Intent.MULTI_SITE] = scores.get(Intent.MULTI_SITE, 0) + 3
    if ex.facts.charts_pool_complete is False and Intent.SUBSET in scores and scores[Intent.SUBSET] < 6:
        del scores[Intent.SUBSET]  # "charts from the satellite clinic were excluded" is not a subset request
    multi_site_how = Intent.MULTI_SITE in scores and Intent.APPLICATION in scores
    other_best = max((v for i, v in scores.items() if i not in (Intent.MULTI_SITE, Intent.APPLICATION)), default=0)
    if ((ex.facts.site_count or 0) > 1 or multi_site_how) and not has_case_facts and other_best < 5 \
            and Intent.SUBSET not in scores and Intent.EXCEPTION not in scores:
        # "We have 3 locations. How should we apply?" is the multi-site question.
        scores[Intent.MULTI_SITE] = max(scores.get(Intent.MULTI_SITE, 0) + 4, scores.get(Intent.APPLICATION, 0) + 1)
    if ex.facts.score is not None and Intent.GREETING in scores:
        del scores[Intent.GREETING]
    if not scores:
        return None
    best = max(scores.values())
    return next(i for i in PRIORITY if scores.get(i) == best)


def _answer_to_pending(text: str, pending: MissingFact | None, ex: Extraction) -> bool:
    """Read a bare reply ("yes", "Fall 2025", "78%") as the answer to what the bot asked."""
    if pending is None:
        return False
    if pending is MissingFact.SCORE:
        return ex.facts.score is not None or any(p.kind in ("impossible_score", "ambiguous_score") for p in ex.problems)
    if pending is MissingFact.ROUND:
        return ex.facts.completed_round is not None or any(p.kind == "future_round" for p in ex.problems)
    field = _YES_NO_FACT.get(pending)
    if field is None:
        return False
    if getattr(ex.facts, field) is not None:
        return True
    reply = _FILLER.sub("", text)
    if _YES.search(reply):
        setattr(ex.facts, field, True)
        return True
    if _NO.search(reply):
        setattr(ex.facts, field, False)
        return True
    return False


def _unpublished(text: str, topics: list[tuple[str, list[str]]]) -> str | None:
    for topic_id, keywords in topics:
        if any(re.search(rf"\b{re.escape(k)}", text) for k in keywords):
            return topic_id
    return None


def understand(raw: str, today: dt.date, pending: MissingFact | None = None,
               unpublished: list[tuple[str, list[str]]] | None = None) -> Understanding:
    text = normalize(raw)
    ex = extract(text, today, expecting_score=pending is MissingFact.SCORE)
    answered_pending = _answer_to_pending(text, pending, ex)
    scores = classify(text)
    ex.text = text
    intent = _pick(scores, ex)
    if _FOREIGN.search(text) and not _DOMAIN.search(text) and intent not in (Intent.HUMAN,):
        intent = Intent.OUT_OF_SCOPE
    if intent is None or intent is Intent.GREETING:
        if _UNRELATED.search(text) or (_OTHER_CERT.search(text) and not re.search(r"\b(qopi|qcp)\b", text)):
            intent = Intent.OUT_OF_SCOPE
    asks = bool(_QUESTION.search(text))
    # A reply to the bot's question that asks nothing new carries no intent of its own: the
    # thread's topic continues ("77, but two oncologists' charts were left out").
    if answered_pending and (not asks or intent is Intent.GREETING or max(scores.values(), default=0) < 4):
        intent = None
    return Understanding(
        text=text, intent=intent, scores={i.value: s for i, s in scores.items()}, facts=ex.facts,
        problems=ex.problems, threshold_question=ex.threshold_question,
        in_domain=(bool(_DOMAIN.search(text)) or bool(scores)) and not _UNRELATED.search(text)
        and not (_OTHER_CERT.search(text) and not re.search(r"\b(qopi|qcp)\b", text)),
        answered_pending=answered_pending, asks=asks,
        mentions_attachment=bool(_ATTACHMENT.search(text)),
        unpublished_topic=_unpublished(text, unpublished or []),
        asks_round_dates=bool(re.search(r"\bwhen (does|do|will|is)\b.{0,30}\bround\b.{0,20}\b(open|close|start|end|due)|\bround (dates?|schedule|calendar|deadlines?)\b|\bwhen is the (next )?(\w+ )?round\b|\bwhen('s| is) the next\b", text)),
    )
