"""Text clean-up before understanding: lower case, plain quotes, and typo repair for the
program's own vocabulary ("elegible", "certifcation", "pathwya") so patterns stay simple.

Typo repair is a SymSpell-style lookup: every keyword's one-deletion variants are indexed
once, a word is compared by its own deletions, and a candidate is kept only when the true
(Damerau) edit distance is 1. Short words are never "repaired": "store" must not become
"score"."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

KEYWORDS = (
    "eligible", "eligibility", "ineligible", "certification", "certified", "certify", "certificate",
    "pathway", "sampling", "methodology", "attestation", "standards", "standard", "measures",
    "measure", "modules", "module", "threshold", "abstraction", "application", "applying",
    "policies", "procedures", "integrated", "integration", "subset", "exception", "exceptions",
    "expire", "expires", "expired", "received", "receive", "locations", "location", "practice",
    "practices", "quality", "overall", "percent", "percentage", "affiliated", "affiliation",
    "separately", "separate", "participate", "participated", "collection", "oncologists",
    "oncologist", "physicians", "excluded", "include", "included", "required", "requirements",
    "qualify", "qualified", "passing", "minimum", "deadline", "submit", "submission",
    "scored", "report", "valid", "validity", "spring", "autumn", "contact", "telephone",
    "representative", "someone", "somebody", "person", "circumstances", "special", "payment",
    "affirm", "department", "program", "programme", "clinics", "offices", "certifying", "different",
)

# Real words one edit away from a keyword: never "repair" them.
PROTECTED = frozenset((
    "office", "policy", "procedure", "clinic", "physician", "measured", "submitted", "reported", "include",
    "includes", "exclude", "excludes", "require", "requires", "receives", "qualifies", "certifies", "integrate",
    "expiring", "passing", "persons", "separated", "practiced", "programs", "sample", "samples", "sampled",
    "standards", "measure", "module", "locate", "located", "reports", "scores", "scorer", "affirms", "collect",
    "special", "someone", "spring", "valid", "submit", "deadlines", "contacts", "phoned", "treated", "tested",
    # Everyday words that are one edit from a keyword ("compliance officer", "our contract with the
    # hospital", "we plan to sunset that clinic"): repairing them changes what the message says.
    "officer", "officers", "affiliate", "affiliates", "equality", "contract", "contracts", "sprint", "string",
    "strings", "summit", "stored", "headline", "sunset", "reporter", "deceive",
))

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ",
                         "\u2013": "-", "\u2014": "-", "\uff05": "%"})
_WORD = re.compile(r"[a-z]{6,}")


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


@lru_cache(maxsize=1)
def _index() -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    index: dict[str, set[str]] = {}
    for word in KEYWORDS:
        for variant in _deletes(word) | {word}:
            index.setdefault(variant, set()).add(word)
    return frozenset(KEYWORDS), {k: tuple(sorted(v)) for k, v in index.items()}


def _distance_is_one(a: str, b: str) -> bool:
    """Damerau distance exactly 1 (one insert, delete, substitution or transposition)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


@lru_cache(maxsize=4096)
def repair_word(word: str) -> str:
    known, index = _index()
    if word in known or word in PROTECTED:
        return word
    candidates: set[str] = set()
    for variant in _deletes(word) | {word}:
        candidates.update(index.get(variant, ()))
    hits = sorted(c for c in candidates if _distance_is_one(word, c))
    return hits[0] if len(hits) == 1 else word


# A sign-off line ("Thanks,", "Best regards,") and contact lines ("Phone: ...") end the
# question: what follows is a signature, whose numbers and words must not be read as facts.
_SIGN_OFF = re.compile(r"^\s*(thanks( so much| again| in advance)?|thank you( so much| in advance)?|many thanks|best( regards| wishes)?|"
                       r"kind regards|warm regards|regards|sincerely|cheers|respectfully|all the best|take care)\s*[,.!]?\s*$", re.I)
_CONTACT_LINE = re.compile(r"^\s*(phone|tel|telephone|fax|cell|mobile|direct|office|email|e-mail|pager|ext)\.?\s*[:#]", re.I)
_CONTRACTIONS = {"whats": "what's", "hows": "how's", "wheres": "where's", "whens": "when's", "isnt": "isn't",
                 "arent": "aren't", "dont": "don't", "didnt": "didn't", "doesnt": "doesn't", "havent": "haven't",
                 "hasnt": "hasn't", "wasnt": "wasn't", "werent": "weren't", "cant": "can't", "wont": "won't"}
_SHORTHAND = [(re.compile(r"\bw/o\b"), "without"), (re.compile(r"\bw/(?=\s|$)"), "with"), (re.compile(r"\bb/c\b"), "because"),
              (re.compile(r"\bbc\b"), "because"), (re.compile(r"\bpls\b|\bplz\b"), "please"), (re.compile(r"\bu\b"), "you"), (re.compile(r"\bw\b(?= \d)"), "with"), (re.compile(r"(?<=[a-z]{2}) n (?=[a-z]{2})"), " and "),
              # Chat shorthand and the program's own abbreviations, spelled out so one pattern reads both.
              (re.compile(r"\bidk\b"), "i don't know"), (re.compile(r"\b(ty|tysm|thx|tx|gracias|merci|danke)\b"), "thanks"),
              (re.compile(r"\bdiff\b"), "different"), (re.compile(r"\brpt\b"), "report"), (re.compile(r"\bfore (?=us\b|it\b|the\b|a\b|an\b|our\b|me\b|certification\b)"), "for "), (re.compile(r"\brt\?"), "right?"),
              (re.compile(r"\bthru\b"), "through"), (re.compile(r"\btho\b"), "though"), (re.compile(r"\babt\b"), "about"),
              (re.compile(r"\bwks?\b"), "weeks"), (re.compile(r"\byrs?\b"), "years"), (re.compile(r"\bmos\b"), "months"),
              (re.compile(r"\btmrw\b"), "tomorrow"), (re.compile(r"\bb4\b"), "before"), (re.compile(r"(?<!, )\brn\b(?=\s*([.?!,;]|$))"), "right now"),
              (re.compile(r"\bp ?& ?p'?s?\b|\bp ?and ?p'?s\b|\bp and p\b"), "policies and procedures"),
              (re.compile(r"\bsops?\b"), "standard operating procedures"),
              # A physician's shorthand: "abstr", "rd", "rpt rec'd", "reg"/"std" track, "Fa25"/"Sp26".
              (re.compile(r"\babstr\b"), "abstraction"), (re.compile(r"\brds?\b"), "round"),
              (re.compile(r"\brec'?d\b"), "received"), (re.compile(r"\breg\b"), "regular"), (re.compile(r"\bstd\b"), "standard"),
              (re.compile(r"\b(fa|fall)\s?'?(2\d)\b"), r"fall 20\2"), (re.compile(r"\b(fa|sp)\s?(20\d\d)\b"), lambda m: ("fall " if m.group(1) == "fa" else "spring ") + m.group(2)), (re.compile(r"\b(sp|spr|spring)\s?'?(2\d)\b"), r"spring 20\2"),
              (re.compile(r"\bcerts\b"), "certifications"), (re.compile(r"\bcert'?d\b"), "certified"),
              (re.compile(r"\bcert\b"), "certification"), (re.compile(r"\bapps\b"), "applications"),
              (re.compile(r"\bapp\b"), "application"), (re.compile(r"\babstr\.(?=\s)"), "abstraction"),
              # Phone autocorrect and voice-to-text: "are we legible question mark".
              (re.compile(r"\blegible\b"), "eligible"), (re.compile(r"\bin ?legible\b"), "ineligible"),
              (re.compile(r"\s*\bquestion mark\b"), "?"),
              # Spanish words bilingual practices mix into English ("otoño 2025", "la puntuación", "cuántas medidas").
              (re.compile(r"\boto(ñ|n)o\b"), "fall"), (re.compile(r"\bprimavera\b"), "spring"),
              (re.compile(r"\b(puntuaci(ó|o)n|puntaje|calificaci(ó|o)n)\b"), "score"), (re.compile(r"\bmedidas\b"), "measures"),
              (re.compile(r"\bcu(á|a)nt(a|o)s\b"), "how many"), (re.compile(r"\bsucursal(es)?\b"), "site"),
              (re.compile(r"\bcl(í|i)nicas\b"), "clinics"), (re.compile(r"\bsacamos\b"), "we got"),
              (re.compile(r"\bpts\b"), "patients"), (re.compile(r"\bdocs\b"), "doctors"), (re.compile(r"\breqs\b"), "requirements")]
_SALUTATION = re.compile(r"^\s*(dear|hi|hello|hey|good (morning|afternoon|evening)|greetings|to whom it may concern)\b[^.?!\n]{0,50}[,:!]?\s*$", re.I)
_WORD_HYPHEN = re.compile(r"\b([a-z]{2,})-(and|or|by|to|of|in|the)-([a-z]{2,})\b")
_CONTRACTION = re.compile(r"\b(" + "|".join(_CONTRACTIONS) + r")\b")


def strip_signature(text: str) -> str:
    lines = text.splitlines()
    if len(lines) < 2:
        return text
    kept: list[str] = []
    if _SALUTATION.match(lines[0]):  # "Dear Help Desk," is not part of the question
        lines = lines[1:]
    for index, line in enumerate(lines):
        if index > 0 and _SIGN_OFF.match(line):
            break
        if _CONTACT_LINE.match(line):
            continue
        kept.append(line)
    return "\n".join(kept)


_ACCREDIT = re.compile(r"\baccreditation\b|\baccredited\b")
_OTHER_ACCREDITOR = re.compile(r"\b(commission on cancer|coc|joint commission|jcaho|napbc|acr|astro|apex|magnet|cap|nccn)\b")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = strip_signature(text).lower()
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\b(\d{2}(?:\.\d+)?)ish\b", r"about \1", text)  # "prelim says 77ish"
    # Field names from an export ("overall_quality_score: 0.7999", "FALL_2025") read as their words.
    text = re.sub(r"(?<=[a-z0-9])_(?=[a-z0-9])", " ", text)
    text = _CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group(1)], text)
    text = _WORD_HYPHEN.sub(r"\1 \2 \3", text)  # "policy-and-procedure manual" reads as its words
    for pattern, replacement in _SHORTHAND:
        text = pattern.sub(replacement, text)
    if not _OTHER_ACCREDITOR.search(text):
        # Practices often call the program's certification "accreditation"; another body's stays as written.
        text = _ACCREDIT.sub(lambda m: {"accreditation": "certification", "accredited": "certified"}[m.group(0)], text)
    return _WORD.sub(lambda m: repair_word(m.group(0)), text)
