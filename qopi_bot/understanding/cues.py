"""Named patterns for what a statistical model should not decide alone.

- Escalation requests (a person, a subset of the practice, an exception): the help desk
  errs toward a person, so a clear request here opens a case whatever else the model read.
- Markers of other business (payers, billing, people's own certifications) and of the
  program's own vocabulary, which decide whether a message is in scope at all.
- Yes/no replies to the question the bot just asked."""

from __future__ import annotations

import re
from functools import lru_cache

from qopi_bot.models import Facts, Intent, MissingFact
from qopi_bot.understanding.extraction import Extraction

_W = list[tuple[float, re.Pattern[str]]]


def _cues(*pairs: tuple[float, str]) -> _W:
    return [(w, re.compile(p)) for w, p in pairs]


_PERSON = r"(a |an |some |real |actual |live )?(person|human|someone|somebody|staff( member)?|representative|rep|agent|team member|coordinator|real person|human being)"

_DISASTER = (r"(hurricane|tornado|flood(ed|ing|s)?|(?<!dumpster )(?<!trash )fire(?! drill| alarm| away)|wildfire|earthquake|disaster|pandemic|covid|cyber ?attack|ransomware|"
             r"evacuat\w*|storm damage|burned down|destroyed|water main|pipe burst|burst pipe|power outage|roof collapse)")
_HIT = (r"(clos\w*|shut\w*|lost|los(e|ing)|destroy\w*|damag\w*|delay\w*|disrupt\w*|couldn't|could not|can't|cannot|unable|miss\w*|behind|"
        r"interrupt\w*|hit|hits|struck|affect\w*|impact\w*|knock\w*|wip\w*|took out|forc\w*|displac\w*|offline|down for|relocat\w*|"
        r"evacuat\w*|during|because of|due to|after|since|from the|caused|gone|ruin\w*|halt\w*|stopp?\w*|burn\w*|flooded|"
        r"inaccessible|out of (commission|service|action)|wreck\w*)\b")

ESCALATION_CUES: dict[Intent, _W] = {
    Intent.HUMAN: _cues(
        (6, r"\b(be )?put (me |us )?in (touch|contact) with\b|\b(get|have|work with) (her|him|them) again\b"),
        (6, r"\b(somebody|someone|a person|one of you|staff( member)?|anyone)\s+(from|at|on)\s+(\w+\s+){0,2}(team|staff|qcp|qopi|asco|office|program)\s+(to\s+)?(give|call|phone|ring|email|contact|reach|talk|speak|meet)\b"),
        (5, r"\bgive (me|us|(dr\.? )?\w+) a (call|ring)\b"),
        (5, r"\b(pick|take) (the|this|that|our) conversation back up\b|\bwith (her|him|them) directly\b|\bis [a-z]+ still (with|at|on) (the|your)\b"),
        (6, r"\b(talk|speak|chat|meet)\s+(directly\s+)?(to|with)\s+(\w+\s+){0,3}(on|from|at|in) (the |your )?(certification |qcp |qopi |asco )?(team|staff|office|program|desk)\b"),
        (6, r"\b(get|have|need|want)\s+(just\s+)?(someone|somebody|a person|a human|one of you)\s+(from|at|on)\s+(the |your )?(qcp|qopi|asco|certification|cert|team)\b"),
        (5, r"\b(call|phone|ring|email) (my|our) (office|cell|number|phone|desk)\b|\bgive (me|us) a (call|ring)\b|\bset up a (call|meeting)\b"),
        (6, rf"\b(talk|speak|chat)\s+(to|with)\s+{_PERSON}\b"),
        # "Is there someone specific at QCP I can talk to?", "I was told to ask for Dana"
        (6, r"\b(someone|somebody|anyone|a person)\s+(specific\s+|in particular\s+)?(at|from|on)\s+(the\s+)?(qcp|qopi|asco|your team|the team|certification)\b[^.?!]{0,20}\b(talk|speak|reach|contact|call|email|ask)\b"),
        (5, r"\b(told|said|asked) (me |us )?to ask for [a-z]+\b"),
        # "ask that a reviewer at QCP re-examine them"
        (6, r"\b(reviewer|someone|a person|staff|your team)\s+(at|from)\s+(qcp|qopi|asco)\s+(to\s+)?(re-?examine|review|look at|check|reconsider|recalculate)"),
        (6, r"\b(can|could|would|will|please have)\s+(a |an |the |one of your |some )?(someone|somebody|person|staff( member)?|team member|human|representative|coordinator)\s+(\w+\s+){0,2}(call|contact|email|phone|reach out to|get back to|get in touch with)\s+(me|us)\b"),
        (6, r"\b(get|have|ask)\s+(a |an |some |one of your |the )?(staff( member)?|person|human|someone|somebody|representative|coordinator|team member)\s+(to\s+)?(look at|review|check|help|handle|call|contact|read)"),
        (6, rf"\b(connect|transfer|put)\s+(me|us)\s+(through\s+)?(to|with)\s+{_PERSON}"),
        (5, r"\b(real|actual|live) (person|human)\b|\bhuman (please|pls)\b|\b(a|an actual) human\b"),
        (5, r"\b(can|could|would|please have)\s+(someone|somebody|a person|staff|your team|the team)\s+(\w+\s+){0,2}(call|contact|email|reach out to|get back to|phone)\s+(me|us)"),
        (6, r"\b(call ?back|call me back|ring me back|phone call from (someone|your team|staff)|(discuss|talk about) (it|this) (by|over the|on the) phone)\b"),
        (4, r"\b(call|phone|ring|telephone)\s+(me|us)\b(?! ?\w* (if|when))|\bescalate\b|\bneed (a|to talk to a) (person|human)|\b(a|an|your|the|qcp|asco|qopi|to|with) (live |real |human )?representative\b(?!'?\s*(charts?|samples?|cases?|data))"),
        (3, r"\b(want|need|like|prefer)\s+(to\s+)?(talk|speak)\s+(to|with)\b|\bnot a (bot|robot)\b|\bare you (a )?(bot|human|robot)"),
        # "can I get a call from someone about our situation?", "could we set up a zoom with your team?"
        (6, r"\b(can|could|may) (i|we) (get|have|schedule|set up|book|arrange) (a |an )?(quick |short )?(call|phone call|meeting|zoom|teams call|conversation)\b"),
        # "would it be possible to schedule a brief phone meeting between Dr. Lin and your staff?"
        (6, r"\b(schedule|set up|arrange|book)\s+(a |an )?(brief |short |quick )?(phone |zoom |video |teams |virtual )?(call|meeting|conversation|chat)\s+(with|between)\b"),
        # "can you route this to Dana?": asking for a message to be handed to someone asks for a person
        # ("I'll pass it along to our manager" does not).
        (6, r"\b((can|could|would|will) you (please |pls )?|please |pls )(route|forward|pass|hand|send)\s+(this|it|my (question|message|email|request|note))\s+(along\s+|on\s+|over\s+)?to\s+(?!(the |a )?(bot|form|portal|website)\b|(our|my|their|his|her)\b)[a-z]+"),
    ),
    # A subset request is said within one sentence: "just split the infusion suite. Would we have to
    # certify together?" is two thoughts, not "certify just the suite".
    Intent.SUBSET: _cues(
        (6, r"\bsubset\b"),
        (6, r"\b(wants?|would like|like|hop(e|es|ing)|plan(s|ning)?) (\w+ ){0,2}(its|their) own (certification|application|certified)\b"),
        (5, r"\b(join|come in|come on board|be added|be included|follow|catch up)\s+(\w+\s+){0,2}(later|next (cycle|round|year|time))\b"),
        (6, r"\b(certif\w*)\b[^.?!]{0,40}\b(now|first)\b[^.?!]{0,80}\b(bring|add|include)\s+(\w+\s+){0,2}(in\s+)?(later|next)\b|\b(bring|add)\s+(\w+\s+){0,2}in\s+(later|next (cycle|round|year|time))"),
        (5, r"\b(certif\w*|apply\w*|application)\b[^.?!]{0,40}\b(separate(ly)? from|apart from|independent(ly)? (of|from)|without) (the |our )?((rest|main|other|remaining|whole)|(\w+ ){0,3}(sites|clinics|locations|offices|campuses))\b"),
        # "accept our application without our newly acquired Spokane clinic"
        (5, r"\b(application|certif\w*|apply\w*)\b[^.?!]{0,40}\bwithout (the |our |that )(\w+ ){0,3}(site|clinic|location|office|campus|practice)\b"),
        # "we would rather our application cover only our original three locations for now"
        (6, r"\b(cover|covers|covering|include|includes|including|limited to|limit it to)\s+only\s+(our|the|one|two|three|four|\d+)\b|\bonly (cover|include)\s+(our|the|one|two|three|\d+)\b"),
        # "we'd rather not include it in the certification"
        (6, r"\b(rather not|prefer not to|don't want to|do not want to|not want to)\s+include\s+(it|them|that|this|those|the)\b[^.?!]{0,40}\b(certif\w*|application|submission)"),
        # "can the peds heme clinic be left off our application?"
        (6, r"\b(be|been|get|got|being)\s+(left|kept|taken|dropped|pulled)\s+(off|out of)\s+(the |our )?(\w+\s+)?(application|certification|submission)\b"),
        (5, r"\b(leave|leaving|exclude|excluding|keep|keeping|drop|dropping|carve|carving|take|taking)\s+(\w+\s+){0,4}(site|location|office|clinic|campus|center|centre|satellite|practice|department|group|team)s?\s+(out|off)\b"),
        (5, r"\b(keep|keeping|leave|leaving|set|setting)\s+((?!money|funds|budget|cash|dollars|time|it)\w+\s+){0,3}(apart|aside|separate|outside)\b[^.?!]{0,60}\b(certif|apply|application)|\b(certif\w*|apply|application)\b[^.?!]{0,80}\b(keep|keeping|leave|leaving|set|setting)\s+((?!money|funds|budget|cash|dollars|time|it)\w+\s+){0,3}(apart|aside|separate|outside)\b"),
        (5, r"\b(do|get|apply|applying|certify|go for)\s+(it\s+|certified\s+|certification\s+)?(only|just)\s+(with|for)\s+(the\s+|our\s+)?(\w+\s+){0,3}(doctors|physicians|oncologists|sites?|clinics?|offices?|team|group|department|locations?)\b"),
        (5, r"\b(leave|leaving|keep|keeping|drop|dropping|carve|carving|take|taking)\s+(\w+\s+){1,4}(out of|off) (the |our )?(application|certification|submission)\b"),
        (5, r"\b(certif\w*|apply\w*|application)\b[^.?!]{0,60}\b(leave|leaving|keep|keeping)\s+\w+\s+out( of (it|this|that))?\b"),
        (5, r"\b(omit|omitting|exclude|excluding|leave|leaving|drop|dropping|remove|removing)\s+(\w+\s+){0,4}(site|location|office|clinic|campus|satellite)s?\s+from\s+(the |our )?(\w+'s\s+)?(application|certification|submission)\b"),
        # "the docs there won't be part of our application. Can we go ahead without them?"
        (5, r"\b(won't|will not|wouldn't|would not|can't|cannot|aren't going to) be (part of|included in|in|on) (our|the) (application|certification|submission)\b"),
        # "apply for our two infusion centers only, not the outpatient clinic"
        (5, r"\b(apply\w*|certif\w*)\s+(for|with)\s+(our|the|just)\s+(\w+\s+){0,3}(sites?|cent(er|re)s?|clinics?|offices?|locations?|campus\w*)\s+only\b|"
            r"\bonly,?\s+(and\s+)?not (the|our) (\w+\s+){0,3}(site|cent(er|re)|clinic|office|location|campus)\b"),
        # "keep St. Luke's off the application", "go for certification with just the main oncology group"
        (5, r"\b(keep|leave|take|keeping|leaving|taking)\s+(\w+\W?\s+){0,3}(off|out of)\s+(the |our )?(application|certification|submission)\b"),
        (5, r"\b(certif\w*|apply\w*|application)\b[^.?!]{0,30}\bwith (just|only) (the |our )?(\w+ ){0,3}(group|site|clinic|office|practice|location|campus|team)\b"),
        # "apply as the practice minus the rural outreach clinic", "certify everything except the Elm St office"
        (5, r"\b(apply\w*|certif\w*|application|submit\w*)\b[^.?!]{0,40}\b(minus|less|except( for)?|excluding|but not|save for|other than)\s+(the |our |that |one )?(\w+\s+){0,3}(site|location|office|clinic|campus|satellite|center|centre)s?\b"),
        (4, r"\b(go ahead|apply|proceed|move forward|certify)\s+without (them|those (\w+ )?(docs|doctors|physicians|sites|clinics|offices)|that (site|clinic|office|location))\b"),
        (5, r"\b(certif\w*|apply\w*)\b[^.?!]{0,40}\b(for|with) (the )?(remainder|rest) of (the |our )?(practice|group|sites|network|locations|clinics)\b"),
        (6, r"\b(certif\w*|apply|applying|application)\b[^.?!]{0,30}\bwith (only|just) (the |our )?(\w+\s+){0,2}(office|site|clinic|location|campus|one)\b"),
        (5, r"\b(certif\w*|certificate|application)\b[^.?!]{0,40}\b(main|one|\w+) (office|site|clinic|location|campus) only\b"),
        (6, r"\bonly\s+(our|the|some|a few|\d+|one|two|three|four|five)\s+(\w+\s+){0,3}(sites|clinics|locations|offices|campuses)\s+(\w+\s+){0,3}"
            r"(want|wants|go|going|apply|applying|participate|ready|move forward|go forward|pursue|get certified)"),
        (5, r"\b(only|just|solely)\b[^.?!]{0,40}\b(site|clinic|location|office|campus|program|department|center|unit|suite|division)s?\b[^.?!]{0,25}\bcertif"),
        (6, r"\b(only|just|solely)\s+(want\s+to\s+|wish\s+to\s+|like\s+to\s+|plan\s+to\s+|hoping\s+to\s+)?(certify|certified|certification for|get certified|apply for)\s+([\w/&'-]+\s+){0,4}(site|location|office|clinic|campus|program|department|division|part|portion|center|unit)"),
        (6, r"\b(certify|certified|certification for|apply for)\s+(only|just)\s+(one|our|the|a|some|part|two|three|a few)\b"),
        (5, r"\b(without|excluding|but not|not) (the rest of|the whole|our whole|the entire|our entire|all of) (the |our )?(practice|group|organization|network|system)\b"),
        (5, r"\b(part|portion|some|one|two|a few|certain) of (our|the) (practice|sites|locations|clinics|offices|group)\b[^.?!]{0,40}\b(certif|apply)"),
        (4, r"\b(certif\w*|apply)\b[^.?!]{0,60}\b(part|portion|piece) of (our|the) (practice|group|organization)\b"),
        (4, r"\b(\w+ )?(program|department|clinic|site|location|division|service line) (alone|by itself|on its own|separately)\b[^.?!]{0,40}\b(certif|apply)|\b(certif\w*|apply)\b(?:(?!measures?|modules?|scores?|threshold)[^.?!]){0,60}\b(alone|by itself|on its own)\b"),
        (4, r"\b(leave|leaving|exclude|excluding|carve|carving|drop|dropping) (out )?(one|a|some|two|our|the)\s+(\w+\s+)?(site|location|office|clinic|campus)s?\b(?![^.?!]{0,30}\bcharts?\b)"),
        (6, r"\bonly (for )?(\d+|one|two|three|four|some|a few|part|a couple) of (our|the) (\d+ |\w+ )?(sites|locations|clinics|offices|campuses)\b"),
        (5, r"\b(sit|sits|sitting) (this one|this round|it) out\b"),
        (5, r"\bonly\b[^.?!]{0,30}\b(certif\w*|apply\w*)\b[^.?!]{0,20}\b(for|of|with) (\d+|one|two|three|four|some|a few|part) of (them|those|our|the)\b"),
        (5, r"\bonly (our|the|one|a) (\w+\s+){0,3}(site|location|office|clinic|campus|program|department)s? (\w+\s+){0,2}(certified|certify|to be certified)|\bget (only|just) "),
        (5, r"\bnot the (other|rest of the) (\w+ )?(sites|locations|clinics|offices|campuses)\b"),
        (3, r"\bnot the whole practice\b|\bonly (one|some|two|three|a few|a couple) of (our )?(sites|locations|clinics|offices)\b"),
    ),
    Intent.EXCEPTION: _cues(
        (6, r"\bexceptions?\b|\bwaiver\b|\bwaive\b|\bexempt(ion)?\b"),
        # "We dispute the measure-level calculations in our Final Report": a decision only staff can make.
        (5, r"\b(dispute|contest|appeal|challenge)\w*\s+(the\s+|our\s+|this\s+)?(\w+[- ]?\w*\s+){0,3}(score|calculations?|report|results?|decision|finding)s?\b"),
        # A disaster or forced closure in a certification question is a special circumstance.
        # Told as part of the practice's story ("we've outlived two mergers and a flood") it asks nothing:
        # it must have hit the practice or its work.
        (4, rf"\b{_DISASTER}\b[^.?!]{{0,60}}\b{_HIT}|\b{_HIT}[^.?!]{{0,60}}\b{_DISASTER}\b"),
        (4, r"\b(allowance|leeway|lenien\w*|flexib\w*|grace period|extension|accommodat\w*|cut us some slack|"
            r"special consideration|consider our (situation|case)|make an exception)\b"),
        (4, r"\bspecial (circumstance|case|situation|consideration)s?\b|\bunusual (circumstance|situation)s?\b|\bmake an allowance\b"),
        # "one oncologist was on medical leave; would the program take that into account?"
        (4, r"\btake (that|this|it|these|those|our situation)( \w+)? into (account|consideration)\b|\btake into (account|consideration)\b"),
    ),
}


# "while I wait for our abstractor to call me back": a call from the practice's own people asks nothing of QCP.
_OWN_PEOPLE_CALL = re.compile(r"\b(wait\w*|waiting) (for|on) (our|my|the|her|his) (\w+ ){0,2}to (call|phone|ring|get back to|email) (me|us)( back)?\b")


def escalation_strength(text: str) -> dict[Intent, float]:
    """How strongly the message asks for each kind of escalation (0 when it does not)."""
    text = _OWN_PEOPLE_CALL.sub(" ", text)
    out: dict[Intent, float] = {}
    for intent, cues in ESCALATION_CUES.items():
        total = sum(weight for weight, pattern in cues if pattern.search(text))
        if total:
            out[intent] = total
    return out


# Words that tie a message to the certification program (generic oncology words do not).
_DOMAIN = re.compile(
    r"\b(qopi|qcp|certif\w*|oqs|quality score|pathway|abstraction|eligib\w*|collection round|"
    r"sampling|attestation)\b"
)
# Words of the certification business beyond the program's name: a question using them is ours.
_PROGRAM_WORDS = re.compile(r"\d\s*%|\b([4-9]\d|100)(\.\d+)?\b|\b(grade|pass|passing|percent\w*|minimum|cut ?off|qualif\w*|integrat\w*|entity|entities|"
                            r"emr|ehr|tax id|affiliat\w*|merg\w*|until when|til when|good (until|til|till|through|thru)|how long|(last|final|closing|due|end) (\w+ )?(date|day)|submi\w+|score|round|site|sites|clinics?|offices?|locations?|tax ids?|practice|apply|application|charts?|policies|measures?|standards?|"
                            r"report|threshold|deadline|expire\w*|valid|modules?|team|help desk|call|phone|email|person|someone|too late|in time)\b")
_QUESTION = re.compile(
    r"\?|^((also|and|oh|so|ok|okay|btw|hey|hi|hello|actually|um|well|sorry|thanks|one more thing|quick q(uestion)?)[,:!.\s-]+)*"
    r"(can|could|is|are|do|does|did|what|what's|when|how|who|which|why|should|may|will|would|where)\b"
    r"|^(\S+\s+){0,3}(what|what's|when|how|who|which|why|where)\b")
# What a practice does with its certification in marketing (logos, badges, press releases, banners)
# is not in the program's text and not ours to answer.
MARKETING = re.compile(r"\b(logos?|badges?|seals?|banners?|press releases?|billboards?|decals?|plaques?|signage|social media (posts?|graphics?)|"
                       r"marketing (materials?|copy|campaign)|brand(ing)? guidelines?|ribbon cutting|celebration)\b")
# Other organizations' business (payers, billing, meetings) is not ours, whatever the question words.
_FOREIGN = re.compile(r"\b(aetna|cigna|humana|unitedhealth\w*|blue cross|bcbs|medicare|medicaid|cms|payer|insurer|insurance|"
                      r"prior auth\w*|billing|coding|icd-?10|cpt|annual meeting|conference|pharmacy|formulary)\b")
# Certifications of people (nurses, physicians) are not QOPI Certification of a practice.
_OTHER_CERT = re.compile(r"\b(ons|oncc|ocn|aocn|cpr|bls|acls|nursing|nurse'?s?|her|his|my personal|biotherapy|provider card)\b.{0,40}\bcertif|\bboards?[- ]certif|\b(medical|specialty|oncology) boards?\b")
_UNRELATED = re.compile(r"^unrelated\b|\b(separate from (qopi|qcp|certification|the certification)|aside from (qopi|qcp|certification)|unrelated to|not (about|related to) (qopi|certification|the certification)|off[- ]topic|outside (your|the bot's|this bot's) (usual )?(remit|scope|wheelhouse|lane)|nothing to do with (qopi|certification))\b")
_FILLER = re.compile(r"^((honestly|well|um|uh|so|actually|hmm|ok|okay|oh|sorry|i mean|i think)[,.!\s-]+)+")
_YES = re.compile(r"^(yes|yeah|yep|yup|y|correct|right|that's right|that is right|true|sure|absolutely|indeed|affirmative|we do|we did|they do|they did|it is|it was|of course|definitely|all of them|all do|all sites do)\b(?!\s+not\b)")  # "they do not" is a no
_NO = re.compile(r"^(no|nope|nah|n|not really|negative|we don't|we do not|we didn't|we did not|they don't|they do not|they didn't|it isn't|it wasn't|none|not yet|not all)\b")
_ATTACHMENT = re.compile(r"\b(attached|attachment|enclosed|see (the )?(file|pdf|spreadsheet|document))\b")

_YES_NO_FACT = {
    MissingFact.PATHWAY: "pathway", MissingFact.SAMPLING: "sampling_followed",
    MissingFact.CHARTS_POOL: "charts_pool_complete", MissingFact.REPORT: "report_received",
    MissingFact.SAME_POLICIES: "same_policies",
}



def answer_to_pending(text: str, pending: MissingFact | None, ex: Extraction) -> bool:
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


def unpublished(text: str, topics: list[tuple[str, list[str]]]) -> str | None:
    for topic_id, pattern in _keyword_patterns(tuple((t, tuple(k)) for t, k in topics)):
        for m in pattern.finditer(text):
            # "After the final report arrives, what are the steps?": a keyword inside a clause of
            # time sets the scene for another question; it is not the question.
            if not _TIME_CLAUSE_BEFORE.search(text[max(0, m.start() - 40):m.start()]):
                return topic_id
    return None


_TIME_CLAUSE_BEFORE = re.compile(r"(^|[.?!;]\s*)(after|once|as soon as|until|before)\s+(\w+\s+){0,4}$")


@lru_cache(maxsize=8)
def _keyword_patterns(topics: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[str, re.Pattern[str]]]:
    # One alternation per topic, built once per knowledge version: a message checks each topic once.
    # A keyword matches as a word start ("renew" finds "renewal"), except a short one, which must be
    # the whole word or its plural: "fee" must not find "feels".
    return [(topic_id, re.compile("|".join(rf"\b{re.escape(k)}" + (r"s?\b" if len(k) <= 4 else "") for k in keywords)))
            for topic_id, keywords in topics if keywords]



# Reminder requests are not a question about the program, so the intent model never learns
# them: "remind me before our score expires", "can you ping us a month before?", "set a
# reminder"; and their end, "stop the reminders". Stop is read first ("stop reminding us").
_REMINDER_STOP = re.compile(
    r"\b(stop|cancel|turn off|switch off|disable|remove|delete|end|unsubscribe( me| us)?( from)?|no more|opt out of)\s+"
    r"(all\s+|the\s+|these\s+|those\s+|your\s+|my\s+|our\s+|any\s+|further\s+|more\s+)*"
    r"(reminders?|reminding|pings?|pinging|nudges?|nudging|notifications?|alerts?)\b"
    r"|\b(don'?t|do not|no need to|please don'?t)\s+(remind|ping|nudge)\s+(me|us)\b"
    r"|\b(don'?t|do not|no longer)\s+(need|want)\s+(the\s+|any\s+|these\s+)?(reminders?|pings?)\b")
_WHEN = r".{0,50}\b(before|ahead|prior|expir\w*|lapse\w*|deadline|last day|runs? out|closes?|valid)"
_REMINDER_START = re.compile(
    r"\bremind\s+(me|us|our team|the team)\b(?!\s*[,:;-]*\s*(of|what|what's|how|who|which|when|where|why|again|is|are|does|do|did|was|were|whether|if|the (pass|passing|cut|min|threshold|score|number|rule|phone|email|address)\w*)\b)"
    r"|\b(set|setup|set up|schedule|create|add|turn on)\s+(up\s+)?(a\s+|an\s+|some\s+|the\s+)?(\w+\s+)?(reminders?|heads[- ]up|alerts?)\b"
    r"|\b(want|like|need|get|send( me| us)?|give( me| us)?)\s+(a\s+|an\s+|some\s+|the\s+)?(\w+\s+)?(reminders?|heads[- ]up|nudge|alert)\b" + _WHEN +
    r"|\b(ping|nudge|alert|notify|email|message|warn)\s+(me|us)\b" + _WHEN +
    r"|\b(reminders?|heads[- ]up)\s+(before|ahead of|prior to)\b")
_LEAD = re.compile(r"\b(\d{1,3}|a|an|one|two|three|four|six|eight)\s+(day|week|month)s?\s+(before|ahead|prior|out|early)")
_SMALL = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "six": 6, "eight": 8}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30}


# "cert threshold - remind me.": tell me again, not a reminder before a date.
_REMIND_ME_OF_A_FACT = re.compile(r"\b(threshold|cut ?off|pass(ing)? (mark|score)|minimum|phone( number)?|email( address)?|rule|steps)\b[^.?!]{0,20}?[-:,]?\s*"
                                  r"remind (me|us)( again| please| pls)?\s*([.?!]|$)")


def reminder_request(text: str) -> str | None:
    """'stop' or 'start' when the message asks to end or to set reminders, else None."""
    if _REMINDER_STOP.search(text):
        return "stop"
    if _REMINDER_START.search(text) and not _REMIND_ME_OF_A_FACT.search(text):
        return "start"
    return None


def reminder_lead_days(text: str) -> int | None:
    """The lead time a reminder request names ("a month before" -> 30), if any."""
    m = _LEAD.search(text)
    if m is None:
        return None
    count = int(m.group(1)) if m.group(1).isdigit() else _SMALL[m.group(1)]
    days = count * _UNIT_DAYS[m.group(2)]
    return days if 0 < days <= 366 else None
