"""Facts from normalized text: scores, rounds, yes/no statements and their negations.

Everything here is deterministic pattern matching. When a value is present but cannot be
a fact (a score of 750%), it is reported as a Problem so the dialogue can say why and ask
again; it is never silently dropped or clamped."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from pydantic import BaseModel, Field

from qopi_bot.models import Facts, RoundRef, Season
from qopi_bot.understanding.numbers import NUMBER_WORDS, parse_decimal, words_to_decimal, years_to_digits


class Problem(BaseModel):
    kind: str  # "impossible_score" | "ambiguous_score" | "future_round"
    detail: str


class Extraction(BaseModel):
    facts: Facts = Field(default_factory=Facts)
    problems: list[Problem] = Field(default_factory=list)
    threshold_question: bool = False  # "is 75% the passing mark?" names the threshold, not a score
    text: str = ""  # the normalized text the facts came from
    # Facts a pattern found stated with doubt ("my boss isn't sure if the policies are the same"):
    # unknown, and no model may read them as stated either.
    hedged: set[str] = Field(default_factory=set)


# ---------------------------------------------------------------- scores
_PCT = r"(?:\s?%|\s?percent\b|\s?per cent\b|\s?pct\b)"
_NUM = r"-?\d{1,4}(?:[.,]\d+)?"
# A bare number (no % sign) is a score only next to a word that says so.
_SCORE_CONTEXT = re.compile(
    r"\b(scor\w*|oqs|quality score|overall quality|grade|got|we get|received|achieved|earned|reached|hit|land(?:ed)? at|written|gives|gave|"
    r"end(?:ed|s)? up (?:with|w|at)|(?:apply|applying|qualify|eligible|certified|ok|okay|good|fine|safe) with|"
    r"came back(?: at| with)?|cleared|number (?:was|is|came)|sits? at|sitting at|"
    r"came in at|came out at|ended (?:up )?(?:with|at)|finished (?:with|at)|result\w*|aggregate|overall|"
    r"numbers? (?:show|shows|showed|say|says|said|are|were|was|is|at)|shows?|showed|practice-wide|report says)\b"
)
_OWNED = re.compile(
    r"\b(we|our|us|i|my|we've|we're|we'd|ours|practice|clinic|got|get|gives|scored|received|achieved|earned|"
    r"reached|came in|came back|cleared|ended|finished|oqs|score (?:of|was|is|were)|score ?[:=])(?:\W|$)"
)
_THRESHOLD_WORDS = re.compile(r"\b(passing|pass mark|threshold|cut[- ]?off|minimum|required|requirement|bar|benchmark)\b")
_ENOUGH_AFTER = re.compile(r"^\s*(?:on [\w\s]{0,30})?(?:round(?:s|ed)? (?:up|down)|get rounded|enough|sufficient|good enough|high enough|passing|a pass\b|pass\b|ok\b|okay\b|count|qualify|make it|make the cut)")
_NOT_SCORE_AFTER = re.compile(
    r"^\s*(?:%\s*)?(?:of (?:our |the )?(?:charts?|patients?|cases?|records?|staff|physicians?|oncologists?|sites?))|"
    r"^\s*-?\s*(?:(?:cert\w* |certification )?measures?\b|sites?|locations?|offices?|clinics?|charts?|patients?|oncologists?|physicians?|doctors?|measures?|"
    r"modules?|standards?|days?|weeks?|months?|years?|am|pm|minutes?|abstracted|complete|completed|done|finished|sure|certain|confident|"
    r"of the way)\b"
)
# "abstraction 100% / OQS 77.3": a share of the work done, named before it, is not the score.
_WORK_BEFORE = re.compile(r"\b(abstraction|abstracted|completion|completed|complete|sampled|sampling|charts?|pool|done|progress)\s*[:=]?\s*~?$")


# Words right after a bare number that say it is the practice's score: "a 76.5 overall", "68 on fall 2025".
_LABEL_AFTER = re.compile(r"^\s*(?:%\s*)?[,.]?\s*(?:to be (?:precise|exact)|(?:for |as )?(?:the )?overall|oqs|aggregate|(?:(?:on|for|in|from) )?(?:the )?(?:certification |cert )?(?:pathway|measures|fall|spring|autumn|round|report|last (?:fall|spring)))\b")
_ADJACENT_LABEL = re.compile(r"\b(shows?|showed|reads|lists|report|score|oqs|overall|aggregate|quality score|result|grade|numbers? (?:show|shows|showed|say|says|are|were|at)|"
                             r"practice-wide|report says|says|got|scored|at|as|came out|came in|came back|landed|ended up|prelim\w*)(?:\s*\([^)]{0,20}\))?\W{0,3}(?:of|was|is|=|:)?\s*(?:a|an)?\s*$|(?:^|\s)an?\s+$")
# "our score preview for the fall 2025 round is 80.5": the label may sit before a year.
_SCORE_IS = re.compile(r"\b(score|oqs|quality score|result|grade|number|percentage|mark|figure)s?\b[^.?!]{0,45}(?:\b(?:is|was|are|were|came back|came in|came out)|[=:])\s*(?:at\s+|exactly\s+|just\s+|only\s+)?(?:an?\s+)?$")
# "Fall 2025: 84": a number labelled by the round it came from.
# "Fall 2025: 84", "spring 2026 round, 80.2": a number right after the round it came from.
_ROUND_LABEL = re.compile(r"\b(spring|fall|autumn)\s*'?\d{2,4}(\s+round)?\s*([:=]|,|\s-)?\s*$")
# "if it is 74.6, does it become 75?": a score supposed for the question is read as one.
_SUPPOSED = re.compile(r"\b(if|say|suppose|assuming|what if) (it|the (score|grade|result|oqs)|we|our (score|grade|result|oqs)) "
                       r"(is|was|were|got|get|had|scored|land|landed|hit|pull|came (in|back) at|come (in|back) at|end(ed)? up (with|at))\s+(exactly\s+|only\s+|just\s+)?(an?\s+|the\s+)?$|"
                       r"\b(if|say|suppose|assuming|what if) it's\s+(exactly\s+|only\s+|just\s+)?(an?\s+|the\s+)?$|"
                       r"\b(hypothetically|in theory|theoretically|for argument's sake)\W{0,4}(speaking\W{0,4})?(say\s+)?(an?\s+)?$")
_COMPARED = re.compile(r"\b((?:has|have|need|needs|must|needed|required) to (?:hit|reach|get|score|be|achieve|clear|meet)(?: at least)?(?: an?)?|"
                       r"(?:believes?|thinks?|thought|said|says|heard|told (?:me|us))\s+(?:that\s+)?(?:it'?s|it is|it was|the (?:threshold|cutoff|minimum) is)|"
                       r"(?:need|needs|require|requires|required)(?: an?)?|[<>]=?|"
                       r"(?:once|when|after|until|till) (?:we|you|they|i) (?:hit|get|reach|achieve|clear)(?: at least)?(?: an?)?|"
                       r"(?:he|she|they|someone|somebody|everyone|people|admin|administrator|manager|boss|director|colleague|predecessor|cfo|ceo|coo|"
                       r"lead|abstractor|physician|doctor|nurse|consultant|team|dr\.? \w+|brochure|website|handbook|flyer|poster|slide|deck|memo|manual|training|"
                       r"(?:old|our|the) (?:\w+ )?(?:brochure|website|handbook|flyer|poster|slide|deck|memo|manual))\s+(?:always\s+|still\s+|now\s+)?"
                       r"(?:says|said|thinks|thought|believes|claims|insists|swears|remembers|recalls|heard|assumes|told (?:me|us)|"
                       r"(?:keeps?|kept) (?:saying|telling (?:me|us)|insisting|quoting))(?:\s+that)?"
                       r"(?:\s+it'?s|\s+it is|\s+it was|\s+it as|\s+the (?:threshold|cutoff|minimum|passing score|bar) (?:is|was|is now|went up to|has gone up to|changed to))?|"
                       r"(?:is|does|would|will) (?:that|this|it)(?: be| count as| mean| equal| make| round to)?|becomes?|become|turns? into|"
                       r"(?:convinced|insists|claims|argues|thinks|believes)\s+(?:that\s+)?(?:it|this|that)\s+(?:means|is|was)|"
                       r"compar\w*(?: it| them| that)? (?:to|with|against)|i (?:thought|think|assumed) (?:it was|it's|it is)|"
                       r"(?:remember|recall|recalled|remembered)(?: it)? (?:being|as|was|at)|(?:keep |kept )?hearing(?: both)?|heard(?: both)?|"
                       r"(?:way|well|far|comfortably|safely|easily) (?:over|above)|(?:is|was|are|were|'s) over|"
                       r"(?:exceed|exceeds|exceeding|surpass|surpasses|beat|beats)(?: an?)?|"
                       r"round(?:ed|s)?(?: it)?(?: up| down)? to|count(?:s|ed)? as|equal to|same as|higher than|lower than|more than|less than|above|below|instead of|vs\.?|versus)\s+(?:a\s+)?$")
_ALTERNATIVE_AFTER = re.compile(r"^\s*(?:%|pct|percent)?\s*(?:exactly (?:a )?pass|or\s+\d|(?:pass(?:es)?|passing|counts?) or\b(?!\s+(?:not|nah|no|nope)\b)|(?:per|for each|on each|for every|each)\s+(?:measure|site|module|location|clinic))")
_ALTERNATIVE_BEFORE = re.compile(r"\d\s*(?:%|pct|percent)?\s+or\s+$|\bboth\s+\d+\s*(?:%|pct|percent)?\s+and\s+$")
_SHARE_OF = re.compile(r"^\s*(?:%|percent|per cent|pct)?\s*(?:of|among|for)\s+(?:our |the |all |their |those )?(?:\w+\s+){0,2}"
                       r"(?:patients?|pts|charts?|cases?|records?|staff|physicians?|oncologists?|docs?|doctors?|nurses?|sites?|"
                       r"visits?|people|population|encounters?|referrals?|infusions?|treatments?)\b")
# A score the writer sets aside in favour of another one in the same message.
_SET_ASIDE_BEFORE = re.compile(r"\b(certified|certification|cert)\b[^.?!\d]{0,20}\b(with|at|on)\s+(an?\s+)?$|\bprelim\w*\b(\s+(score|number|result|oqs|report|figure)s?)?\s*(was|is|of|at|came in at|came back at|showed|said|says|had)?\s*(about\s+|around\s+|an?\s+)?$|\b(ignore|disregard|forget|scratch|not|instead of|rather than|replaces?|replacing|over)\s+(\w+'s\s+|the\s+|that\s+|our\s+|my\s+)?(old\s+|earlier\s+|prelim\w*\s+)?$")
_SET_ASIDE_AFTER = re.compile(r"^\s*%?\s*(\w+\s+){0,2}(below|above|earlier|in the thread)?[,;.]?\s*(-\s*)?(that|which|it|this)\s+(was|is|were)\s+(just\s+|only\s+)?(the\s+|a\s+|our\s+)?"
                             r"(prelim\w*|draft|estimate\w*|old|outdated|wrong|incorrect|a typo|a mistake|interim|projected|projection)\b")
_ROUNDING = re.compile(r"\bround(ed|ing)?\s+(a\s+)?$")
_ROUND_WITH = re.compile(r"\b(round|pathway|measures|track|cycle)\b.{0,12}\b(with|at)( an?)?\s*$")


# "the dashboard shows about 78", "our last pathway score is from spring 2023 (an 84)": where the score
# was read from, or a score in brackets after the round it came from.
_SHOWN = re.compile(r"\b(dashboard|report|portal|results?|summary|scorecard|spreadsheet|export)\s+(shows?|showed|says|said|reads?|lists?|has|had|gave us|came back( at| with)?)\s+"
                    r"((about|around|roughly|approximately|approx\.?|an?|just under|just over|exactly)\s+)?$|"
                    r"\b(score|oqs|result|round|spring|fall)\b[^.?!]{0,40}\((an?\s+)?$")
_CLINICAL_BEFORE = re.compile(r"\b(pd-?l1|her-?2|ki-?67|anc|hgb|hb|hemoglobin|wbc|plt|platelets?|creatinine|cr|egfr|psa|cea|ca-?125|ca 19-9|tmb|"
                             r"ecog|kps|bmi|a1c|spo2|o2 sat|lvef|ejection fraction|tps|cps|blasts?|mrn|dob|age[ds]?|chair|bed|room)\b"
                             r"[\s:=#]*((of|at|is|was|about|around)\s+)?(\w+\s+)?$")
# Shared by the two readings of a number (may it be a score; is it the practice's own):
# "... pathway. 85. eligible?" (a number alone in its sentence), "sp 2025 = 78", "74.2 on our final
# report" (from where it was read: ours, or any report's), "exactly 75.0 on ...", "we got 76".
_SENTENCE_START = re.compile(r"(^|[.?!;:\n]\s*)$")
_NAMED_BY_SIGN = re.compile(r"\b(spring|fall|round|oqs|score)\s*(\d{2,4}\s*)?[=:]\s*$")
_REPORT_NAMED = r"(\w+ ){0,3}(final |cert\w* |certification )?(report|oqs|score|results?|dashboard)\b"
_FROM_A_REPORT = re.compile(rf"\s*%?\s*(on|in|from|per) (our|the|my) {_REPORT_NAMED}")
_FROM_OUR_REPORT = re.compile(rf"\s*%?\s*(on|in|from|per) (our|my) {_REPORT_NAMED}")
_QUALIFIERS = r"exactly|just|only|precisely|a|an"
_OPENS_WITH = re.compile(rf"[\s,.:;-]*(({_QUALIFIERS})\s+)+")
_OPENS_WITH_GOT = re.compile(rf"[\s,.:;-]*(({_QUALIFIERS}|we got|got)\s+)+")
_FRACTION = re.compile(r"\b(works? out to|comes? (?:out )?to|came (?:out )?to|equals?|=|exactly|aggregate(?: of)?|score of)\s+(?:exactly\s+)?(\d)/(2|4|5|8|10)\b(?!/)")


def _candidate_scores(text: str, expecting_score: bool = False) -> list[tuple[Decimal, int, int, bool]]:
    """(value in percent, start, end, had_percent_sign) for every number that may be a score."""
    out: list[tuple[Decimal, int, int, bool]] = []
    for m in re.finditer(r"(?<![\w.$/:-])(\d{1,3}(?:\.\d+)?)\s*(?:/|out of)\s*100\b", text):
        value = parse_decimal(m.group(1))
        if value is not None:
            out.append((value, m.start(), m.end(), True))
    for m in re.finditer(rf"(?<![\w.$/:-])({_NUM})({_PCT})?(?![\w/:]|\.\d|-\d|\s?/\s?100\b|\s?out of 100\b)", text):
        raw, pct = m.group(1), bool(m.group(2))
        value = parse_decimal(raw)
        if value is None:
            continue
        if re.search(r"(/|\bout of)\s*$", text[max(0, m.start() - 8):m.start()]):
            continue  # the 100 of "79 out of 100" is the scale, read with the score above
        after = text[m.end():m.end() + 40]
        # A label belongs to the nearest number: never look back past another number.
        before = re.split(r"\d", text[max(0, m.start() - 45):m.start()])[-1]
        if not pct and _NOT_SCORE_AFTER.match(after):
            continue
        named_measures = re.search(r"\b([\w-]+) measures? (are|is|were|was|came|come|sit|sits|running|dragging|lagging)\b[^.?!\d]{0,30}$", before)
        if named_measures and named_measures.group(1) not in ("certification", "cert", "25", "all", "pathway", "the", "our", "these", "those", "qopi"):
            continue  # "our end-of-life measures are dragging at around 40%": some measures, not the OQS
        if _CLINICAL_BEFORE.search(text[max(0, m.start() - 30):m.start()]):
            continue  # "PD-L1 60%", "ANC 1.2", "Hgb 9.8": a patient's value pasted by mistake, never the OQS
        if re.search(r"\b(modules?|measure)\b[^.?!]{0,30}$", before) and not re.search(r"\b(overall|oqs|aggregate)\b", before) \
                and not re.search(r"\b(scored|score|oqs)\b[^.?!]{0,12}$", before):
            continue  # "our lung module numbers were low (around 62%)": one module's number, not the OQS
        if _SHARE_OF.match(after) or _WORK_BEFORE.search(before) \
                or re.match(r"\s*(sure|certain|confident|of the way|done|complete|completed|abstracted|finished)\b", after):
            continue  # "not 100% sure", "~60% abstracted": certainty or progress, not the score  # "82% of our patients", "95% of charts": a share of something, not the OQS
        if not pct and re.fullmatch(r"(19|20)\d\d", raw):
            continue  # a year
        rounding = bool(re.search(r"\b(you|we|they|it|i|to|do|does|will|would|get|gets)\s+round(ed|ing)?\s+(a\s+)?$", before))
        if not pct and not rounding and re.search(r"\b(spring|fall|autumn|round|qcp-|core|measure|module|standard)\s*['#]?$", before):
            continue  # "round 2", "Core 6" name things, not scores
        relayed_with_round = re.match(r"^\s*(%|percent|pct)?\s*(overall|oqs|aggregate|score)?[,;]?\s*(from|in|for)\s+(the\s+|our\s+)?(last\s+)?(fall|spring|autumn)\b", after) \
            and re.search(r"\b(says|said|told (me|us)|thinks|remembers)\s*$", before)
        if relayed_with_round:
            pass  # "my boss says seventy nine percent, from the fall round last year": our score, relayed
        elif _COMPARED.search(before) or re.search(r"[<>]=?\s*$", before) or _ALTERNATIVE_AFTER.match(after) or _ALTERNATIVE_BEFORE.search(text[max(0, m.start() - 12):m.start()]):
            continue  # "count as 75", "is it 75 or 80": the threshold being asked about, not a score
        proportion = "." in raw.replace(",", ".") and Decimal(0) <= value <= Decimal(1)
        if not pct and value <= 20 and "." not in raw and re.match(r"[.)](\s|$)", after) and re.search(r"(^|[.?!:;]\s*)$", text[:m.start()]):
            continue  # "2. What would we need...": a list number
        if not pct and not proportion and value < 30 and not expecting_score and not re.search(r"(scor\w*|oqs|quality score|overall)[\s:=]*(?:of|was|is|=|:)?\s*(?:an?)?\s*$", before):
            continue  # "sites in 2 states": a small bare number is a count unless it is called a score
        labelled = _ADJACENT_LABEL.search(before) or _SUPPOSED.search(before) or _ROUND_LABEL.search(text[max(0, m.start() - 24):m.start()]) or _SCORE_IS.search(text[max(0, m.start() - 70):m.start()]) or _SCORE_CONTEXT.search(before) or _ROUND_WITH.search(before) or _ROUNDING.search(before) or _LABEL_AFTER.match(after) \
            or _ENOUGH_AFTER.match(after) or (not text[:m.start()].strip(" ,.:;-") and Decimal(30) <= value <= Decimal(100)) \
            or bool(re.match(r"\s*%?\s*(->|=>|→)\s*\d", after) and re.search(r"\bround", text)) or bool(_SHOWN.search(text[max(0, m.start() - 60):m.start()])) \
            or bool(_SENTENCE_START.search(text[:m.start()]) and re.match(r"\s*([.!;]|$)", after) and Decimal(30) <= value <= Decimal(100)) \
            or bool(proportion and len(raw.replace(",", ".").split(".")[-1]) >= 2 and _CERT_CONTEXT.search(text)) \
            or bool(_NAMED_BY_SIGN.search(before)) \
            or bool(_FROM_A_REPORT.match(after)) \
            or bool(_OPENS_WITH_GOT.fullmatch(text[:m.start()]) and Decimal(30) <= value <= Decimal(100))
        # ("do you round? 74.99 -> 75?"; "74.2 on our final report"; "exactly 75.0 on ...": each names a score)
        # A bare number replying to "what was your score?" needs no label.
        bare_reply = expecting_score and (not text[:m.start()].strip(" ,.:;-") or len(text.split()) <= 8)
        if not pct and not labelled and not bare_reply:
            continue
        if not pct and "." in raw.replace(",", ".") and Decimal(0) <= value <= Decimal(1):
            value = value * 100  # "OQS 0.81": a proportion
        elif not pct and value == 1 and "." not in raw:
            continue  # "1" alone is not a score
        out.append((value, m.start(), m.end(), pct))
    for m in _FRACTION.finditer(text):
        # "numerator/denominator works out to exactly 3/4": a fraction of the whole, not a date.
        numerator, denominator = int(m.group(2)), int(m.group(3))
        if 0 < numerator < denominator:
            out.append((Decimal(numerator * 100) / Decimal(denominator), m.start(2), m.end(3), True))
    for m in NUMBER_WORDS.finditer(text):
        after = text[m.end():m.end() + 14]
        whole_reply = expecting_score and not text[:m.start()].strip(" ,.:;-") and not text[m.end():].strip(" ,.!%")
        if not re.match(_PCT, after) and not whole_reply:
            continue
        value = words_to_decimal(m.group(0))
        if value is not None:
            out.append((value, m.start(), m.end(), True))
    return sorted(out, key=lambda c: c[1])


_CERT_CONTEXT = re.compile(r"\b(qopi|qcp|oqs|certif\w*|quality score|pathway|score|eligib\w*|apply|threshold|pass\w*|enough|reporting track|"
                           r"(spring|fall|autumn) ('?\d{2}|\d{4}))")


def _extract_score(text: str, expecting_score: bool, ex: Extraction) -> None:
    if re.search(r"\d\s*(?:%|pct|percent)?\s+or\s+[<>=]*\s*\d", text):
        ex.threshold_question = True  # "is it 75 or 80 percent to pass?"
    owned_scores: list[Decimal] = []
    superseded: set[Decimal] = set()
    for value, start, end, pct in _candidate_scores(text, expecting_score):
        before = text[max(0, start - 60):start]
        after = text[end:end + 40]
        if re.search(r"\b(pass mark|cut ?off|threshold|minimum|(the|passing) bar|pass line|passing line)\s*(is|was|=|:|of)\s*(still\s+|now\s+|really\s+)?$", before) \
                or re.search(r"\b(passing|minimum|min|required|cut ?off|threshold|needed)\s+(score|grade|mark|oqs|percentage)(\s+(for|to pass|to apply)(\s+\w+){0,2})?"
                     r"\s*(is|was|=|:|of)?\s*(now\s+|really\s+|actually\s+)?(an?\s+)?$", before) \
                or re.match(r"^\s*%?\s*(is |are |was )?(still |really |actually |now )?(the |a )?(cut ?off|threshold|minimum|passing (score|mark|grade|bar|threshold)|pass mark)\b", after):
            ex.threshold_question = True  # "passing score is 75 right?" names the threshold
            continue
        if re.search(r"\bthe\s+$", before) and pct and not re.search(r"\b(our|we|my)\b[^.?!]{0,20}$", before) \
                and not re.match(r"\s*(%|percent|pct)?\s*(that )?(we|i|our \w+|they) (got|scored|earned|received|achieved|had|made|hit)\b", after):
            ex.threshold_question = True  # "is the 75% per measure?" names the threshold
            continue
        adjacent = bool(_ADJACENT_LABEL.search(before)) or bool(_LABEL_AFTER.match(after))
        raw_number = text[start:end]
        owned = bool(_SCORE_IS.search(text[max(0, start - 70):start])) or bool(_SHOWN.search(before)) or bool(_SUPPOSED.search(before)) \
            or bool(re.fullmatch(r"0?[.,]\d{2,}", raw_number.strip())) \
            or bool(_SENTENCE_START.search(text[:start]) and re.match(r"\s*%?\s*([.!;]|$)", after)) \
            or bool(_NAMED_BY_SIGN.search(before)) \
            or bool(re.search(r"\b(apply|applying|qualify|eligible|certified|ok|okay|good|fine|safe) with\s+(an?\s+)?$", before)) or bool(_ROUND_LABEL.search(text[max(0, start - 24):start])) or bool(_OWNED.search(before)) or bool(_ENOUGH_AFTER.match(after)) or expecting_score or bool(_ROUNDING.search(before)) \
            or ((adjacent or not text[:start].strip(" ,.:;-") or _OPENS_WITH.fullmatch(text[:start])
                 or _FROM_OUR_REPORT.match(after))
                and (pct or Decimal(30) <= value <= Decimal(100)))
        owned_by_words = bool(_SCORE_IS.search(text[max(0, start - 70):start])) or bool(_OWNED.search(before)) or adjacent
        if owned and not owned_by_words and not expecting_score and _ENOUGH_AFTER.match(after) and re.search(
                r"\b(need|have|has|must)\s+(to\s+)?(be\s+)?(above|over|more than|higher|clear|beat)", text):
            ex.threshold_question = True  # "is exactly 75% a pass, or do we need to be above 75?" asks the threshold
            continue
        if not owned and (_THRESHOLD_WORDS.search(after[:30]) or _THRESHOLD_WORDS.search(before[-30:])):
            ex.threshold_question = True
            continue
        if not owned and not pct:
            continue
        if not owned and not _CERT_CONTEXT.search(text):
            continue  # "PD-L1 under 50%" is not an Overall Quality Score
        owned_scores.append(value)
        if _SET_ASIDE_BEFORE.search(text[max(0, start - 30):start]) or _SET_ASIDE_AFTER.match(text[end:end + 60]):
            superseded.add(value)
    if not owned_scores:
        return
    if 0 < len(superseded) < len(set(owned_scores)):
        # "Ignore Raj's 72% below, that was the preliminary. The FINAL report says 77.4%": the score
        # set aside is not the practice's score; the one left is.
        owned_scores = [v for v in owned_scores if v not in superseded]
    distinct = list(dict.fromkeys(owned_scores))
    # "0.7625 - does that mean 76%?" restates one score, rounded: keep the precise one.
    precise = [v for v in distinct if not any(o != v and abs(o - v) < 1 and len(str(o)) > len(str(v)) for o in distinct)]
    distinct = precise or distinct
    if len(distinct) > 1:
        ex.problems.append(Problem(kind="ambiguous_score",
                                   detail=f"I see more than one score ({', '.join(f'{v:g}%' for v in distinct)})"))
        return
    value = distinct[0]
    if value < 0 or value > 100:
        ex.problems.append(Problem(kind="impossible_score",
                                   detail=f"{value:g}% is not a possible Overall Quality Score (scores run from 0% to 100%)"))
        return
    ex.facts.score = float(value)


# ---------------------------------------------------------------- rounds
_SEASON = r"(spring|fall|autumn)"
_YEAR = r"(?:'|’)?(\d{4}|\d{2})\b"


def _season(word: str) -> Season:
    return "spring" if word.startswith("sp") else "fall"


def _year(raw: str) -> int:
    year = int(raw)
    return 2000 + year if year < 100 else year


def _current_half(today: dt.date) -> RoundRef:
    # Rounds generally fall in January-June (spring) and July-December (fall); used only to
    # resolve words like "last fall", never to compute a deadline.
    return RoundRef(season="spring" if today.month <= 6 else "fall", year=today.year)


def _relative_round(text: str, today: dt.date) -> RoundRef | None:
    m = re.search(rf"\b(last|this past|past|previous|this|current|most recent|latest)\s+(?:year'?s?\s+)?(?:(?:round|window|session|cycle)\s+(?:in|of)\s+(?:the\s+)?)?{_SEASON}\b", text)
    m_year = re.search(rf"\b{_SEASON}\s+(?:round\s+)?(?:of\s+|earlier\s+|from\s+|held\s+)?(last|this)\s+year\b", text) or \
        re.search(rf"\b(?:the\s+)?{_SEASON}\s+round\s+(last|this)\s+year\b", text)
    if m_year:
        season, which = _season(m_year.group(1)), m_year.group(2)
        return RoundRef(season=season, year=today.year - (1 if which == "last" else 0))
    if not m:
        bare = re.search(rf"\b(?:in|from|during|for) (?:the )?{_SEASON}(?: round)?\b(?! (?:\d|'\d|of|next|this|last))", text)
        if bare and re.search(r"\b(got|scored|had|did|earned|received|came|was|were|made|hit|finished|completed)\b", text[:bare.start()]):
            # "we got 78 in spring": the most recent round of that season that has happened.
            season = _season(bare.group(1))
            candidate = RoundRef(season=season, year=today.year)
            if candidate.order_key() >= _current_half(today).order_key():  # the current half's round is not over
                candidate = RoundRef(season=season, year=today.year - 1)
            return candidate
        return None
    if re.search(r"\b(will|going to|plan(ning)? to|about to|hope to|hoping to)\b[^.?!]{0,60}$", text[:m.start()]):
        return None  # "we will be on the pathway for the first time this fall": not done yet
    which, season = m.group(1), _season(m.group(2))
    if which in ("most recent", "latest", "recent"):
        candidate = RoundRef(season=season, year=today.year)
        if candidate.order_key() > _current_half(today).order_key():
            candidate = RoundRef(season=season, year=today.year - 1)
        return candidate
    if re.search(r"\blast year'?s?\s", m.group(0)):
        return RoundRef(season=season, year=today.year - 1)
    current = _current_half(today)
    if which in ("this", "current"):
        return RoundRef(season=season, year=today.year)
    # "last fall": the most recent fall before the half-year we are in now.
    candidate = RoundRef(season=season, year=today.year)
    if candidate.order_key() >= current.order_key():
        candidate = RoundRef(season=season, year=today.year - 1)
    return candidate


_NOT_COMPLETED = re.compile(
    r"\b(not (yet )?(started|begun|done|completed|finished|participated in|submitted)|haven't (yet )?(started|begun|done|completed|finished|participated in|submitted)|"
    r"hasn't (started|begun)|will (do|join|participate in|start|enter)|going to (do|join|participate in|start)|plan(ning)? to (do|join|participate in|start|enter)|"
    r"about to (start|begin|join)|signed up for|registered for|currently in|in the middle of|upcoming|next(?! to)|"
    r"sit out|sat out|sitting out|skip|skipped|skipping|miss|missed|missing|pass on|passed on|passing on|not do|not doing|drop out of|dropped out of|"
    r"(not|n't|never|unable to) (take part in|participate in|join|do|complete|finish))\s+(\w+\s+){0,3}$"
)


_ROUND_PATTERNS = (
    re.compile(rf"\b{_SEASON}\s*(?:round\s*)?(?:of\s*|in\s*)?{_YEAR}"),
    re.compile(rf"\b(\d{{4}})\s*{_SEASON}\b"),
    re.compile(r"\b(fa|fl|fal|sp|spr)\s?'?(\d{2}|20\d{2})\b"),  # FA25, SP'24
)
# "the fall 2025 round closes dec 12": a calendar date asked about, not the round the score is from.
_CALENDAR_AFTER = re.compile(r"^\s*(?:round\s+)?(?:closes|close date|opens|ends|deadline|is due|was due|window (?:opens|opened|closes|closed|dates?|ends)|opened (?:on|dec|nov|jun|may|\d))\b")
_OWNED_ROUND_BEFORE = re.compile(r"\b(our|we|we've|my|score from|scored|from the|in the|did|completed|finished)\b[^.?!]{0,25}$")


def _named_rounds(text: str) -> list[tuple[RoundRef, int]]:
    found: list[tuple[RoundRef, int]] = []
    for pattern in _ROUND_PATTERNS:
        for m in pattern.finditer(text):
            groups = m.groups()
            season_word, year_raw = (groups[0], groups[1]) if not groups[0].isdigit() else (groups[1], groups[0])
            year = _year(year_raw)
            if not 2000 <= year <= 2100:  # "DOB 01/02/1960 fall" names no round
                continue
            if _CALENDAR_AFTER.match(text[m.end():m.end() + 20]) or _NOT_COMPLETED.search(text[max(0, m.start() - 45):m.start()]):
                continue  # a round's dates, or a round not (yet) done: not the one the score is from
            found.append((RoundRef(season=_season(season_word), year=year), m.start()))
        if found:
            break
    return sorted(found, key=lambda r: r[1])


# "we're in the middle of the spring 2026 round; if we pass, how long is it good for?" supposes it done.
_IF_WE_PASS = re.compile(r"\b(if|once|assuming|when) (we|it|they) (pass|passes|get through|make it|clear it|hit the threshold)\b")
_CORRECTION = re.compile(r"\b(i meant|i mean|correction|make that|sorry,? (it was|it's|that was|that should be|should be)|actually,? (it was|it's)|"
                         r"wait,? no|no,? wait|actually,? no|no,? actually|scratch that|or rather)\b")


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CLOSED_IN = re.compile(r"\b(round|cycle|window|collection)\s+(that\s+|which\s+)?(closed|ended|wrapped up|finished|closes|ends)\s+(in\s+|on\s+|back in\s+)?"
                        r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2},?\s+)?(20\d\d)\b")


def _round_by_close(text: str) -> RoundRef | None:
    """"the round that closed in December 2024": rounds close in the first half (spring) or the
    second (fall) of a year."""
    m = _CLOSED_IN.search(text)
    if m is None:
        return None
    month = _MONTHS.index(m.group(5)) + 1
    return RoundRef(season="spring" if month <= 6 else "fall", year=int(m.group(7)))


def _extract_round(text: str, today: dt.date, ex: Extraction) -> None:
    named = [r for r in _named_rounds(text) if not re.search(r"\bnot\s+(the\s+)?$", text[max(0, r[1] - 10):r[1]])]
    correction = None
    for correction in _CORRECTION.finditer(text):
        pass
    if correction is not None and any(r[1] >= correction.end() for r in named):
        # "79% in spring 2025 - sorry, I meant fall 2025": the corrected round counts.
        named = [r for r in named if r[1] >= correction.end()]
    done = [r for r in named if not _NOT_COMPLETED.search(text[max(0, r[1] - 45):r[1]])]
    if done and len(done) < len(named):
        named = done  # "it was spring 2025, we skipped fall '24": the skipped round is not the score's
    if named:
        # Several rounds named: the practice's own ("our fall 2024 score") is the one that counts.
        owned = [r for r in named if _OWNED_ROUND_BEFORE.search(text[max(0, r[1] - 40):r[1]])]
        found, start = (owned or named)[0]
    else:
        relative = _relative_round(text, today) or _round_by_close(text)
        if relative is None:
            return
        season_word = re.search(r"\b(spring|fall|autumn)\b", text)
        # Where the round is named, so "we could not take part in the spring round" is checked like a named one.
        found, start = relative, (season_word.start() if season_word else 0)
    if _NOT_COMPLETED.search(text[max(0, start - 45):start]) and not _IF_WE_PASS.search(text):
        return  # "we have not started the Spring 2026 round yet" names a round, not a completed one
    if found.year > today.year:
        ex.problems.append(Problem(kind="future_round", detail=f"the {found.label()} round has not happened yet"))
        return
    ex.facts.completed_round = found


# ---------------------------------------------------------------- yes/no statements
_NEG = r"(?:not|n't|never|neither|nor|no longer|didn't|did not|haven't|have not|hasn't|has not|weren't|wasn't|don't|do not|doesn't|does not|cannot|can't|couldn't|without|failed to|missed)"

_STATEMENTS: list[tuple[str, bool, re.Pattern[str]]] = [
    # (fact, value, pattern) -- negative patterns come first so they win over a bare mention.
    ("pathway", True, re.compile(
        rf"\b{_NEG}\s+(\w+\s+){{0,3}}(the\s+)?(regular|standard|general|normal|usual|basic)\s+(qopi\s+)?(reporting\s+)?(track|option|reporting)\b")),
    ("pathway", False, re.compile(
        rf"\b(regular|standard|general|normal|usual|non-certification|basic|other)\s+(qopi\s+)?(reporting\s+)?(track|pathway|option)|"
        rf"\b(regular|standard|general|normal|usual|basic)\s+(qopi\s+)?reporting\b|\b(instead of|rather than) (the )?(qopi )?certification (reporting )?(pathway|track)|"
        rf"\b{_NEG}\s+(\w+\s+){{0,4}}(the\s+)?(qopi\s+)?certification\s+(reporting\s+)?(pathway|track)|"
        rf"\b{_NEG}\s+(choose|chose|pick|picked|select|selected|use|used|do|did|go with|opt for|opted for)\s+(\w+\s+){{0,2}}(the\s+)?pathway|"
        rf"\bnot\s+(on\s+)?the\s+(certification\s+)?pathway|"
        rf"\b(skip|skipped|skipping|opted out of|passed on|did not do|didn't do|didn't go with|did not go with)\s+(\w+\s+){{0,2}}(the\s+)?(qopi\s+)?(certification\s+)?(reporting\s+)?(pathway|track)")),
    ("pathway", True, re.compile(
        r"\b(certification\s+(reporting\s+)?(pathway|track)|on the pathway|the pathway|certification measures|"
        r"25 (certification )?measures|twenty[- ]five measures|\bpathway\s*[:=|]\s*(qopi\s+)?cert)")),
    ("sampling_followed", False, re.compile(
        rf"\b{_NEG}\s+(\w+\s+){{0,3}}(follow|followed|use|used|meet|met|hit|reach|reached|apply|applied|stick to|comply with)\s+(\w+\s+){{0,3}}"
        rf"(sampling|target chart|chart target|chart requirement|target number|required (number of )?charts)|"
        rf"\b(fewer|less|not enough|too few|short on|under) (\w+\s+){{0,2}}charts|\bdeviat\w* from (the )?(qopi )?sampling|"
        rf"\bsampling (methodology )?(wasn't|was not|was never) (followed|correct|done right)\b|"
        rf"\b(missed|didn't hit|did not hit|short of) (the )?(target|chart target|chart numbers|chart requirement)|"
        rf"\b(hand-?picked|cherry-?picked|picked|chose|selected)\s+(\w+\s+){{0,2}}charts\b(?!\s+(at random|randomly))|"
        rf"\b{_NEG}\s+(do|did|use|used|follow|followed)\s+(the\s+)?random\s+(chart\s+)?(picking|selection|sampling|draw)|"
        rf"\binstead of (doing |using |following )?(the )?random (\w+\s+){{0,2}}(selection|sampling|picking)|"
        rf"\bconvenience sampl\w*|\b(skip|skipped|skipping|ignored|bypassed)\s+(\w+\s+){{0,2}}(the\s+)?(qopi\s+)?sampling|\b(rather than|instead of)\s+(following|using|doing|applying)\s+(the\s+)?(qopi\s+)?sampling")),
    # "the Practice did not adhere to the QOPI sampling methodology (charts were pulled by convenience)"
    ("sampling_followed", False, re.compile(
        rf"\b{_NEG}\s+(adhere|comply|conform|stick|keep)\w*\s+(to|with)\s+(the\s+)?(qopi\s+)?sampling|\bpulled by convenience\b")),
    # "we didn't do the sampling the right way either"
    ("sampling_followed", False, re.compile(
        rf"\b{_NEG}\s+(do|did|follow|run|use)\w*\s+(the\s+|our\s+)?sampling\s+(\w+\s+)?(the\s+)?(right|correct\w*|proper\w*|by the book|as required)")),
    ("sampling_followed", True, re.compile(
        r"\b(followed|follow|used|met|meet|hit|complied with)\s+(\w+\s+){0,3}(sampling|target chart|chart target|chart requirement)|"
        r"\bsampling\s+(methodology\s+|method\s+|rules\s+)?(was|were|has been|had been)\s+(\w+\s+)?(followed|done (right|correctly|properly|by the book)|correct)\b|"
        r"\b(did|do|does)\s+(use|do|follow)\s+(the\s+)?random\s+(sample|sampling|pull|selection|draw)")),
    ("charts_pool_complete", True, re.compile(
        r"\b(no one|nobody|no (oncologists?|physicians?|docs?|doctors?|providers?|clinicians?))('s)?( charts?)? (was|were|got) (left out|excluded|omitted|dropped)|"
        r"\bno (\w+\s+){0,2}charts? ((were|was) )?(excluded|left out|omitted|dropped)\b|\bnothing (was )?(excluded|left out)|"
        r"\b(didn't|did not|never) (exclude|leave out|omit)|\bwithout exclud\w*|\bnone of (our|the) (\w+\s+)?(charts|oncologists|physicians) (were|was) (excluded|left out)")),
    ("charts_pool_complete", False, re.compile(
        r"\b(exclud\w*|left out|leave out|omit\w*|weren't in|were not in|wasn't in|was not in|not in the (sampling )?pool|not included|wasn't included|weren't included|isn't included|didn't include|did not include|"
        r"not part of the (sampling )?pool|dropped|removed)\b.{0,80}\b(pool|sampl\w*|charts?)|"
        r"\bcharts?\b.{0,80}\b(exclud\w*|left out|omitted|weren't in|were not in|not in the (sampling )?pool|not included|wasn't included|weren't included)|"
        r"\bnot all (of )?(our |the )?([\w/&'-]+\s+){0,3}(oncologists|physicians|doctors|docs|providers|charts|sites|locations)\b.{0,60}\b(pool|sampl\w*|includ\w*)|"
        r"\bleft\b.{0,50}\bout of (the |our )?(sampling )?(pool|sample)|"
        r"\b(never|didn't|did not|weren't|were not|wasn't|was not)\s+(\w+\s+)?(make|made|get|got|go|went|put|pulled)\s+(it\s+)?(in|into)\s+(the\s+|our\s+)?(sampling\s+)?(pool|sample)\b|"
        r"\b(weren't|were not|wasn't|was not|aren't|are not|isn't|is not) (a )?part of (the |our )?(\w+ )?(pool|sample)")),
    ("charts_pool_complete", True, re.compile(
        r"\ball (of )?(our |the )?(charts|oncologists|physicians|providers)\b.{0,60}\b(were |was )?(included|in the (sampling )?pool)")),
    ("report_received", True, re.compile(
        r"\b(not|no longer|n't)\s+(\w+\s+)?(waiting|awaiting)\b|\breport\s+(came|arrived|was released|is in)\b|\bit came in\b")),
    ("report_received", False, re.compile(
        rf"\b{_NEG}\s+(\w+\s+){{0,3}}(receiv\w*|got|gotten|get|seen)\s+(\w+\s+){{0,3}}(final\s+)?(\w+\s+)?report|"
        r"\b(still |currently )?(waiting|awaiting|wait)\s+(on|for)?\s*(\w+\s+){0,7}report|"
        rf"\breport\s+(\w+\s+){{0,2}}(hasn't|has not|hasnt|isn't|is not|not)\s+(\w+\s+){{0,1}}(come|arrived|out|in|back|here|ready|available|released|landed|shown up|come through|issued|been (released|sent|issued|posted|delivered))|"
        r"\breport (is )?(still )?(pending|not (yet )?(available|out|in))|\breport\b[^.?!]{0,30}\b(still (waiting|awaiting|pending)|(is|has) not (yet )?(arrived|come))|\bno report yet|\bbefore (we get|getting|receiving) (the |our )?(final )?(\w+ )?report|"
        r"\b(only|just|still only) (have|got|seen|received) (the |our |a )?(prelim\w*|draft|interim|dashboard)\b|\bnot (the |our )?final (\w+ ){0,2}report( yet)?\b")),
    ("report_received", True, re.compile(
        r"\b(received|got|have|get|downloaded|seen)\s+(\w+\s+){0,2}(final\s+)?(qopi\s+)?(certification\s+)?report\b|\breport (came|arrived|was released)")),
    # "The infusion suite follows St. Agnes Health's hospital policies, not ours."
    ("same_policies", False, re.compile(
        r"\b(follows?|uses?|runs? on|operates? under|is under)\s+([\w.]+\s+){0,3}(\w+'s?\s+)?(\w+\s+)?(polic\w*|procedures)[^.?!]{0,20}\bnot (ours|our own|our (polic\w*|procedures|p&ps?))\b")),
    # "Lakeshore adopted our policies and procedures in full after the acquisition"
    ("same_policies", True, re.compile(
        r"(?<!never )(?<!not )(?<!n't )\b(adopted|took on|switched to|moved (over )?to|signed on to|moved onto)\s+(our|the same|the practice's|our shared)\s+(\w+\s+){0,2}(polic\w*|procedures|p&ps?|manual)")),
    # "never adopted the Arizona sites' P&Ps": some sites run under other policies.
    ("same_policies", False, re.compile(
        r"\b(never|not|haven't|hasn't|have not|has not|didn't|did not|won't|will not)\s+(yet\s+|ever\s+)?(adopted|adopt|taken on|switched to|moved to|followed|signed on to)\s+(the\s+|our\s+)?(\w+\s+){0,3}(\w+'s?\s+)?(polic\w*|procedures)")),
    # "one compliance director who sets the policies and procedures for all four": one set everywhere.
    ("same_policies", True, re.compile(
        r"(?<!own )(?<!separate )(?<!different )(?<!distinct )(?<!individual )\bpolic(y|ies)( and procedures)? (for|across|at|in|over) (all|both|every one of|each of) (\w+ )?(of )?(our |the |those |them|these )?(\w+ )?(sites|offices|clinics|locations|campuses|two|three|four|five|six|seven|eight|nine|ten)\b")),
    ("same_policies", False, re.compile(
        rf"\b(each|every)\s+(\w+\s+){{0,2}}(site|clinic|location|office|practice)s?\s+(\w+\s+){{0,3}}(has|have|with|uses|use|runs|keeps|follows|sets)\s+(its|their)\s+own\s+(\w+\s+){{0,2}}(polic|procedure|rules|protocol)|"
        rf"\b(each|every)\s+(\w+\s+){{0,2}}(site|clinic|location|office)s?\s+(does|do|has|runs|sets|writes|makes)\s+(its|their)\s+own\s+(thing|way|playbook|rules)|"
        rf"\b(does|do|runs|run|goes|go)\s+(its|their)\s+own\s+(thing|way)\b|"
        rf"\bown (set of )?(policies|procedures|protocols|playbooks?)\b|\b(?<!our )(?<!my )(\w+'s) own\s+(\w+\s+){{0,4}}(polic\w*|procedures?|protocols?|manuals?)\b|"
        rf"\b(never|not yet|haven't|have not|didn't|did not|not|won't|will not|aren't|are not|isn't|is not)\s+(\w+\s+){{0,2}}(harmoni[sz]ed|reconciled|unified|standardi[sz]ed|aligned|consolidated)\b|\b(?<!our )(?<!my )own\s+(\w+\s+){{1,2}}(policies|procedures|protocols|binders?|manuals?|rule ?books?)\b|\b(different|separate|independent|varying|distinct) (\w+\s+){{0,2}}(policies|procedures|protocols|(policy|procedure|p&p) (manuals?|binders?|books?))|"
        rf"\bnone of (our |the )?(sites|offices|locations|clinics|practices)\s+(\w+\s+){{0,2}}(share|use|follow|have|run under)\b|"
        rf"\b{_NEG}\s+(share|use|follow|have|run under|operate under)\s+(the same |common |shared |one set of )?(\w+\s+)?(policies|procedures|p&ps?|p & ps?)\b|"
        rf"\bloose(ly)?\s+(\w+\s+)?(affiliat\w*|connected|linked|tied|associated|related)|"
        rf"\b(has|have|keeps?|kept|uses?|on|under|operat\w+ under|follows?)\s+(their|its) (old|own|previous|former|legacy|separate) (\w+\s+)?(polic\w*|procedures?|p&ps?)|"
        rf"\b(operat\w+ (on|under)|still on|running on|runs on|follows?|following)\s+(the\s+)?(\w+\s+){{0,2}}(old|previous|former|legacy)\s+([\w']+\s+){{0,2}}(polic\w*|procedures?|p&ps?)|"
        rf"\b(site|clinic|location|office|campus|practice)\b[^.?!]{{0,40}}\b(follows?|following|runs? on|running on|uses?|using|operat\w+ (on|under)|still on)\s+"
        rf"(the\s+)?(\w+\s+){{0,3}}(\w+'s|\w+s'|their|its own|previous|old|former|legacy)\s+(\w+\s+)?(polic\w*|procedures?|p&ps?)|"
        rf"\b(its|their) own\s+(\w+\s+){{0,3}}(polic\w*|procedures?|rule ?books?|p&ps?|manuals?|playbooks?|way of doing things)\b|\bloose (affiliation|network|group|federation|confederation|collection)\b|"
        rf"\b{_NEG}\s+(\w+\s+){{0,3}}(the same|same|shared|common|identical)\s+(\w+\s+){{0,1}}(policies|procedures)|"
        rf"\bpolicies (and procedures )?(differ|vary|are different|aren't the same|are not the same)|"
        rf"\b(runs? on|running on|follows?|following|uses?|operat\w+ (on|under))\s+(the\s+)?(?!our\b|practice's\b|main\b)(\w+'s|\w+s')\s+(\w+\s+)?(polic\w*|procedures?|p&ps?)|"
        rf"\b(polic\w*|procedures?|p&ps?)\b[^.?!]{{0,120}}(?<!or )(?<!or are )(?<!or still )\b(still |each )?(follow|follows|use|uses|keep|keeps|kept|run on|runs on|still on)\s+(their|its)\s+own\b(?!\s+(\w+\s+)?(emr|ehr|schedul\w*|billing|staff|managers?|labs?|pharmac\w*|doctors|physicians))|"
        rf"\bnot (all|every) (of )?(our |the )?(sites?|offices?|locations?|clinics?)\s+(\w+\s+){{0,2}}(follow|use|share|have|operate under|run under)\s+the same")),
    ("same_policies", True, re.compile(
        r"\b(same|shared|common|identical|single|one set of|unified|uniform|standardi[sz]ed|centrali[sz]ed)\s+(\w+\s+){0,3}(policies|procedures|protocols|p&ps?|p & p|policy (manual|book|binder|handbook))|"
        r"\bone (policy|policies and procedures|procedure) (manual|book|binder|handbook)\b|"
        r"\b(same|shared|common|single|one)\s+(\w+\s+){0,3}(rules?|policy|procedures?|office) (binder|manual|book|handbook)s?\b|"
        r"\b(one|a single|the same|single)\s+(\w+\s+){0,2}(director|leader|leadership|committee|person|office|team)\s+(\w+\s+){0,2}(owns|sets|writes|approves|manages|maintains|controls|decides|in charge of|responsible for)\s+(\w+\s+){0,3}polic(y|ies)|"
        r"\b(sites|clinics|offices|locations|we|all|both)\s+(\w+\s+)?(share|follow|use|run on|operate under)\s+(the same |one |a single |common |our |all (of )?(their |our |the )?|their )?(set of )?(policies|procedures|p&ps?)\b|"
        r"\b(follows?|following|uses?|using|runs? on|operates? under)\s+(our|the same|one|the practice's|the main)\s+(\w+\s+)?policy( and procedure)? (manual|book|binder|handbook)\b|"
        r"\b(follows?|following|uses?|using|runs? on|running on|operates? under)\s+(the\s+)?(main|home|parent|central|practice's|practice-wide|same|our)\s+(\w+\s+)?(policies|procedures|p&ps?)\b|"
        r"\b(they're|they are|it's|it is|are|is|be|being|gets?|got|were|was)\s+(all\s+|now\s+|already\s+)?(on|under)\s+(our|the same|one|a single|shared|common)\s+(set of\s+)?(policies|procedures|p&ps?)\b|"
        r"\b(director|leader|leadership|committee|person|office|team)\s+(\w+\s+){0,2}(owns|sets|writes|approves|manages|maintains|controls|enforces)\s+(\w+\s+){0,3}polic(y|ies)\s+(\w+\s+){0,2}(for|across|at|in) (all|every|each)\b|"
        r"\b(policies|procedures)\s+(\w+\s+){0,3}(are |is )?(the same|shared|identical|uniform|standardi[sz]ed)\b|"
        r"\b(policies|procedures)\s+(apply|applied)\s+(across|at|to)\s+all\b|"
        r"\b(polic\w*|procedures|p&ps?)\s+(\w+\s+){0,2}(fully |completely |all )?(replaced by|switched to|moved to|converted to|brought onto|aligned with) (ours|our own|our (polic\w*|procedures|p&ps?))\b|"
        r"\b(policies|procedures) (are |is )?(all )?(set|managed|written|maintained|decided|made|run|controlled) (centrally|by (one|a single|our central))|"
        r"\bcentral(ly)? (set|managed|written) (policies|procedures)|\b(we are|we're|are all|sites are|locations are|they are|they're)\s+(\w+\s+)?functionally integrated\b")),
    ("participated_round", False, re.compile(
        rf"\b{_NEG}\s+(\w+\s+){{0,3}}(participat\w*|taken part|take part|took part|joined|join|done|did|do)\s+(\w+\s+){{0,3}}(qopi\s+)?(collection\s+)?(round|session|cycle|window)s?\b|"
        r"\bnever (\w+\s+)?(participated|taken part|took part|done a round|did a round|signed up|enrolled|registered)|"
        r"\bnever (did|done|do|joined|completed|ran) (a |any |the )?(qopi )?(collection )?round\b|"
        r"\b(outside|independent|independently) (of )?(any|a|the) (qopi )?(collection )?(round|cycle|session)")),
    ("participated_round", True, re.compile(r"\b(participated|took part|completed|finished|did|submitted)\s+(\w+\s+){0,3}(collection\s+)?round")),
    ("abstraction_complete", False, re.compile(
        rf"\b{_NEG}\s+(\w+\s+){{0,3}}(complete|completed|finish|finished|done)\s+(\w+\s+){{0,3}}abstraction|"
        r"\babstraction (is |was )?(still )?(incomplete|not (yet )?(complete|finished|done))|\bincomplete abstraction|"
        rf"\b{_NEG}\s+(\w+\s+){{0,2}}(the\s+|our\s+)?abstraction\s+(\w+\s+){{0,2}}(finished|done|completed|complete|in)\b|"
        r"\babstraction\s+(\w+\s+){0,2}(isn't|is not|wasn't|was not|hasn't been|has not been)\s+(yet\s+)?(complete|completed|finished|done)|"
        r"\babstraction\s+(\w+\s+){0,5}(never|not|wasn't|was not|isn't|is not|hasn't|has not|weren't|didn't|did not)\s+(\w+\s+){0,2}(finished|completed|complete|done)\b|"
        r"\b(only|just|got|made it|were|was|are|is)\s+(\w+\s+)?(halfway|half way|part way|partway|partially|partly|part of the way)\s+(through|done with|into)\s+(the\s+|our\s+)?abstraction|"
        r"\babstraction\s+(is|was)\s+(only\s+)?(half|partially|partly|not fully)\s+(done|complete|completed|finished)|"
        r"\b(incomplete|unfinished|partial)\s+abstraction|\b(ran out of time|couldn't finish|could not finish)\b.{0,40}\babstraction")),
    ("abstraction_complete", True, re.compile(r"\b(completed|finished|done with)\s+(\w+\s+){0,3}abstraction|abstraction (is |was )?(complete|finished|done)\b")),
]

_INTEGRATION = [
    ("common EMR", re.compile(r"\b(common|same|shared|one|single|unified)\s+(\w+\s+)?(emr|ehr|electronic (medical|health) record)")),
    ("single tax ID", re.compile(r"\b(single|one|same|shared|common)\s+(\w+\s+)?(tax id|tax identification|tin|ein)\b|\btax id\b")),
    ("staff rotate across sites", re.compile(r"\b(staff|nurses|physicians|doctors|providers)\s+(\w+\s+){0,2}rotat|\brotat\w+\s+(\w+\s+){0,2}(staff|nurses)")),
    ("centralized leadership", re.compile(r"\bcentrali[sz]ed\s+(\w+\s+){0,2}(person|entity|leadership|management|director|administration|oversight|quality)")),
]

_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "several": None, "multiple": None}


# "not sure whether we met the chart targets" states no fact either way.
_DOUBT = re.compile(r"\b(not (totally |entirely |completely |quite |really |fully |100% )?sure|unsure|don't know|do not know|no idea|no clue|not certain|uncertain|unclear|(isn't|aren't|wasn't|weren't) (sure|certain))\b")
_UNSURE = re.compile(r"\b((must|should|do|does|can|could|will|would|shall) we|do we (have|need) to|not (totally |entirely |completely |quite |really |fully )?sure|(isn't|aren't|wasn't|weren't) (sure|certain)|unsure|don't know|do not know|no idea|no clue|dunno|not certain|uncertain|unclear|wondering|can't remember|cannot remember|whether|if we)\b")


# "we didn't skip the pathway": a negated verb of leaving out, which reverses the statement. The verb must
# follow the negation ("charts of a doctor who left mid-year were not in the pool" is one negative).
_DOUBLE_NEGATIVE = re.compile(r"(\bnot|n't|\bnever|\bno longer)\s+(\w+\s+){0,2}(skip\w*|miss\w*|leave|left|drop\w*|exclud\w*|omit\w*|opt\w* out|forg[eo]t\w*)\b")
_NEGATOR = re.compile(r"\bnot\b|n't\b|\bnever\b|\bno longer\b")
# "the certification pathway instead of the usual reporting track": what was not done is named after these.
_INSTEAD_OF = re.compile(r"\b(instead of|rather than|in place of|over)\s+(the\s+|our\s+|a\s+)?$")
_NEGATED_BEFORE = re.compile(r"(\bnot|n't|\bnever)\s+(\w+\s+){0,2}$")


# A checklist typed in a hurry: "report yes sampling yes pathway no".
_CHECKLIST = {
    "report_received": r"(?:final )?report", "sampling_followed": r"sampling", "pathway": r"(?:certification )?pathway",
    "abstraction_complete": r"abstraction", "charts_pool_complete": r"(?:all )?charts(?: in (?:the )?pool)?",
}
_CHECK_YES = r"(?:yes|y|yep|done|complete|completed|received|in|ok|okay|followed|met)"
_CHECK_NO = r"(?:no|n|nope|not yet|pending|missing|incomplete|not done|false)"
# "Abstraction: not finished for 2 modules", "sampling=not followed": a negated state after the label.
_CHECK_NOT = r"(?:not (?:yet )?(?:followed|finished|complete|completed|done|met|received|used|chosen|selected|in)|unfinished|partial(?:ly)?(?: done| complete)?)"
# "- Sampling: we didn't follow it": in a labelled line, "it" is the label.
_LABELLED_IT = re.compile(r"\b(sampling|abstraction|pathway|(?:final )?report)\s*[:=]\s*([^:=]{0,50}?)\b(it)\b")


def _extract_checklist(text: str, ex: Extraction) -> set[str]:
    decided: set[str] = set()
    for fact, name in _CHECKLIST.items():
        m = re.search(rf"\b{name}\s*[:=-]?\s*(?:({_CHECK_YES})|({_CHECK_NO}))(?=[\s,.;!?]|$)(?!\s+(?:the|our|we|it|that|this|of|to|for|with|fall|spring|autumn|\d)\b)", text)
        if m is None:
            m = re.search(rf"\b{name}\s*[:=-]?\s*({_CHECK_NOT})\b", text)
            if m:
                setattr(ex.facts, fact, False)
                decided.add(fact)
            continue
        setattr(ex.facts, fact, m.group(1) is not None)
        decided.add(fact)
    return decided


# "we skipped the collection round entirely this year": no round at all (unless one is named as done).
_SKIPPED_ROUND = re.compile(r"\b(skip|skipped|skipping|sat out|sit out|missed)\s+(the\s+|a\s+|this\s+|that\s+|every\s+|all\s+)?(\w+\s+){0,2}(collection\s+)?(round|cycle|session)s?\b|"
                            r"\b(skip|skipped|skipping|sat out|sit out|missed)\s+(the\s+)?(qopi|participating|participation)\b(?!\s+(certification|modules?|measures?))")


_UNDECIDED_POLICIES = re.compile(
    r"\b(whether|undecided|not (yet )?decided|haven't decided|have not decided|still (being )?(negotiated|decided|discussed|figured out)|tbd|to be decided)\b.{0,80}\b(adopt\w*|polic\w*|procedures)\b|"
    r"\b(adopt\w*|polic\w*|procedures)\b.{0,80}\b(undecided|not (yet )?decided|still (being )?(negotiated|decided|discussed)|tbd|to be decided)\b")


def _extract_statements(text: str, ex: Extraction) -> None:
    decided: set[str] = _extract_checklist(text, ex)
    for fact, value, pattern in _STATEMENTS:
        if fact in decided:
            continue
        m = pattern.search(text)
        if m and _NEGATED_BEFORE.search(text[max(0, m.start() - 20):m.start()]) and not _NEGATOR.search(m.group(0)):
            continue  # "we're not some loose affiliation": let a later pattern decide
        if m and value is False and _INSTEAD_OF.search(text[max(0, m.start() - 20):m.start()]):
            continue  # "the pathway instead of the usual reporting track": the track was not chosen
        if m:
            decided.add(fact)
            # Doubt said further back in the same sentence counts too: "i'm not sure if the two satellite
            # offices follow the same P&Ps".
            if _UNSURE.search(text[max(0, m.start() - 40):m.end()]) \
                    or _DOUBT.search(re.split(r"[.?!]\s", text[max(0, m.start() - 80):m.end()])[-1]):
                ex.hedged.add(fact)
                continue
            if value is False and _DOUBLE_NEGATIVE.search(m.group(0)):
                value = True  # "we didn't skip the certification pathway": two negatives
            setattr(ex.facts, fact, value)
    if ex.facts.same_policies is not None and _UNDECIDED_POLICIES.search(text):
        # "five sites share them; whether the two new ones adopt them or keep their own is undecided": ask
        ex.facts.same_policies = None
    if ex.facts.participated_round is None and ex.facts.completed_round is None and _SKIPPED_ROUND.search(text):
        ex.facts.participated_round = False
    ex.facts.integration_evidence = [label for label, pattern in _INTEGRATION if pattern.search(text)]
    m = re.search(r"\b(\d{1,3}|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+(of (?:our|the) |\w+\s+)?(office\s+)?(sites|locations|offices|clinics|campuses|satellites)\b", text)
    if m:
        raw = m.group(1)
        count = int(raw) if raw.isdigit() else _COUNT_WORDS.get(raw)
        if count and count >= 1:
            ex.facts.site_count = count


_LEADING_DOT = re.compile(r"(?<![\w.])\.(\d)")
# Phone numbers, extensions and clock times are never scores or rounds.
_NOT_A_QUANTITY = re.compile(r"\(?\b\d{3}\)?[-.\s]?\d{3}[-.]\d{4}\b|\b(?:x|ext\.?)\s?\d{2,5}\b|\b\d{1,2}:\d{2}\b")


def _digits_for_number_words(text: str) -> str:
    """"seventy eight point two" -> "78.2", so one set of score rules reads words and digits.
    Small counts stay words: "one set of policies", "two sites" mean what they say."""
    def swap(m: re.Match[str]) -> str:
        value = words_to_decimal(m.group(0))
        if value is None or (value < 20 and "point" not in m.group(0)):
            return m.group(0)
        return f"{value:f}".rstrip("0").rstrip(".") if "." in f"{value:f}" else str(value)
    return NUMBER_WORDS.sub(swap, re.sub(r"\ba hundred\b", "one hundred", text))


def extract(text: str, today: dt.date, expecting_score: bool = False) -> Extraction:
    ex = Extraction()
    text = _LEADING_DOT.sub(r"0.\1", _digits_for_number_words(years_to_digits(_NOT_A_QUANTITY.sub(" ", text))))
    text = _LABELLED_IT.sub(lambda m: f"{m.group(1)}: {m.group(2)}{m.group(1)}", text)
    _extract_round(text, today, ex)
    _extract_score(text, expecting_score, ex)
    _extract_statements(text, ex)
    return ex
