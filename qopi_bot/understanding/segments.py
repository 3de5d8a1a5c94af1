"""A message -> the part that speaks, split into the questions it asks.

Practices forward notes, greet, give context and sign off with a title and phone number.
What surrounds the questions is context (its facts still count), and a signature or a
forwarding header is neither: its numbers must never be read as scores."""

from __future__ import annotations

import re

# Header lines of a forwarded or quoted message ("From: Dr. Patel <...>", "Sent: Monday ...").
_HEADER = re.compile(r"^\s*(-{2,}.*(forwarded|original) message.*-{0,}|(from|sent|to|cc|date|subject)\s*:.*)$", re.I)
# A signature line: a phone number, an extension, or "Name | Title | Practice" with no question.
_PHONE = re.compile(r"(\(?\b\d{3}\)?[-.\s]\d{3}[-.]\d{4}\b|\b\d{3}[-.]\d{4}\b|\bx\s?\d{2,5}\b|\bext\.?\s?\d{2,5}\b)", re.I)
_SLACK_NOISE = re.compile(r"<@[A-Z0-9]+>|(?<!\w)@[\w.-]+|:[a-z0-9_+-]+:")


def clean_lines(raw: str) -> str:
    """Drop forwarding headers, signature lines and Slack mention/emoji tokens; keep line breaks."""
    kept: list[str] = []
    for line in raw.splitlines():
        if _HEADER.match(line):
            continue
        if kept and "?" not in line and _PHONE.search(line) and len(line.split()) <= 14:
            continue  # "Karen Mills, Practice Manager | Lakeshore Oncology | 614-555-0182 x204"
        kept.append(_SLACK_NOISE.sub(" ", line))
    return "\n".join(kept)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def unfold_tables(text: str) -> str:
    """A pasted table ("Round | OQS | Final rpt" over "Fall 2025 | 0.792 | Received") becomes
    "Round: Fall 2025; OQS: 0.792; Final rpt: Received", so each value sits next to its name."""
    out: list[str] = []
    header: list[str] | None = None
    header_line = ""
    rows = 0
    for line in [*text.splitlines(), ""]:
        # Two columns have one bar ("Round | OQS"); a lone row of cells is kept as written below.
        cells = _cells(line) if line.count("|") >= 1 else None
        if header is not None and (cells is None or len(cells) != len(header)) and not re.fullmatch(r"[-:|\s]+", line):
            if rows == 0:
                out.append(header_line)  # a lone row of cells is no table: keep it as written
            header, rows = None, 0
        if cells is None:
            out.append(line)
        elif header is None:
            header, header_line = cells, line
        elif re.fullmatch(r"[-:|\s]+", line):
            continue  # a markdown rule under the header
        else:
            out.append("; ".join(f"{name}: {value}" for name, value in zip(header, cells)) + ".")
            rows += 1
    return "\n".join(out[:-1])


def logical_lines(text: str) -> list[str]:
    """Re-join lines an email client wrapped mid-sentence; keep list items and paragraphs apart."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if out and not re.search(r"[.?!:;]$", out[-1]) and re.match(r"[a-z(]", line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


_QUESTION_START = (
    r"(can|could|is|are|do|does|did|what|whats|what's|when|how|who|which|why|should|may|will|would|where|must|shall|"
    r"until (when|what)|by (when|what date)|am i (right|correct|wrong)|"
    r"any idea|is there|are there|tell me|let me know|wondering|need to know|pls confirm|please confirm|confirm)\b"
)
_LEAD = r"((also|and|oh|so|ok|okay|btw|plus|but|then|one more thing|second|2nd|another q(uestion)?|quick q(uestion)?|q|\d[.)]|[a-c][.)]|\([a-d1-9]\))[,:!.\s-]+)*"
# Typed without a question mark, the question may start mid-sentence: "85 fall 2025 can we apply".
_INVERTED = r"\b(can|could|do|does|did|are|should|will|would)\s+(we|i|you|they)\b(?!\s+(know|think|believe)\b)|\b(until|til|till|thru|through) when\b|\bgood (until|til|till)\s*$"
_ASKS = re.compile(rf"\?\s*$|\s-\s*(what|what's|whats|how|when|which|who|where|why)\s+\S+\s+\S+|^{_LEAD}(please\s+)?(send|give|share|text|forward)\s+(me|us)\s+(the |your |a |an )?([\w']+\s+){{0,2}}(phone|number|email|contact|address|link|list|form)\b|^{_LEAD}((i|we) )?(also )?(need|want|would like|'d like|am looking for|looking for) (the |your |a |an )?(\w+\s+){{0,2}}(phone|number|email|contact|address|link|list|form)\b|\b(she|he|they|[a-z]+)('d| would) (also )?like (the |your |a |an )?(\w+\s+){{0,2}}(phone|number|email|contact)\b|^{_LEAD}(still\s+)?(eligible|ok to apply|okay to apply|good to apply|able to apply|allowed)( to apply)?\s*[;?]?$|^{_LEAD}(please\s+)?remind (me|us) (of )?(the|what|how|which|whether|if)\b(?!.*\b(before|expir\w*|days?|weeks?|months?|in advance|ahead)\b)|^{_LEAD}{_QUESTION_START}|:\s*{_LEAD}{_QUESTION_START}|{_INVERTED}|^(\S+\s+){{1,4}}(what|what's|whats|how|why)\s+\S+\s+\S+|\b(wondering|not sure|find out|finding out|asking|asked|ask|know|check|see|confirm|understand|curious|tell (me|us)|let (me|us) know) (if|whether|when|how|what|which|who)\b|\b(need|want|would like|'d like|trying|hoping) to (know|find out|confirm|check|understand|clarify)\b|\bcan you (tell|confirm|let)\b|\b(please|pls) (advise|confirm|let us know)\b|"
                   r",\s*(right|correct|yes or no|true)\s*[.?!]*$|\s(right|correct|yes or no|true)\s*\?+$|(\d%?|\bis \w+)\s+(right|correct)\s*[.!]*$")
# A full stop ends a sentence only before a space or the end: "74.9%" and "p.m." stay whole.
_SENTENCE = re.compile(r"(?:[^?!\n;.]|\.(?!\s|$))*\?+|(?:[^?!\n;.]|\.(?!\s|$))+(?:[.!;\n]|$)")
# "can we apply, and do we apply together?": a second question inside one sentence.
_INNER_WORDS = r"(?:am i right|am i correct|am i wrong|whether|can|could|is|are|do|does|did|what|whats|what's|where's|who's|how's|when's|when|how|who|which|why|should|will|would|where|until when|until what|remind me|tell me|confirm|explain|at what point|at which point|by when)"
_INNER_SPLIT = re.compile(rf"(?:,\s*(?:and\s+(?:also\s+)?|also\s+|plus\s+|or\s+|so\s+)?|\s+(?:and|also|plus)\s+|\s+-\s+|\s+\+\s+)(?=(?:in general\s+|generally\s+|by the way\s+|btw\s+|separately\s+|(?:i|we|she|he|they)\s+(?:also\s+)?(?:want|need|would like|'d like)\s+to\s+know\s+|(?:once|after|when|if)\s+\w+\s+\w+(?:\s+\w+)?\s+(?=how|what|when|is|does))?{_INNER_WORDS}\s+\S+\s+\S+|(?:until|till|through|by) (?:when|what (?:date|day))\s*\?)|"
                          rf"(?:,\s*(?:and\s+)?|;\s*|\s+and\s+)(?=\(?[a-d1-9]\)\s)")


_RELATIVE = re.compile(r"(which|who|where|when)\s+(is|are|was|were|has|have|had)\b")


# "Two questions: (a) is 75% enough" - the numbering and its preamble are no part of the question.
_ENUMERATION = re.compile(r"^([^:?]{0,40}:\s*)?\(?([a-d]|[1-9])[.)]\s+")


# "ok perfect and thats good until when": the thanks that opens a follow-up is no part of its question.
_ACK_WORD = r"(ok|okay|k|perfect|great|thanks|thank you|thx|ty|cool|got it|awesome|good|sounds good|excellent|wonderful|super|nice|understood)"
_ACKNOWLEDGED = re.compile(rf"^{_ACK_WORD}([,!.\s]+{_ACK_WORD})*[,!.\s]+(and|so|but|then)\s+(?=\S+\s+\S+)")


_ANNOUNCES = re.compile(r"\b(would like|'d like|want|wanted|need|needs|hoping|trying|like) to (know|find out|ask|confirm|understand|check)(\s+[\w']+){0,7}$|"
                       r"^(so |now |ok |okay )?(tell me|let me know|be honest|level with me|give it to me)( straight| honestly| plainly| frankly| true| now| please)?$")


_BARE_REQUEST = re.compile(r"^(please |pls |kindly |so )?(advise|confirm|let (me|us) know|thoughts|your thoughts|asap|thanks)"
                           r"( asap| please| pls| thanks| thank you| soonest| at your earliest convenience)*[\s!.?]*$")


# Words that give a question a topic of its own ("How many standards does that attestation cover?").
_OWN_TOPIC = re.compile(r"\b(standards?|attestation|measures?|modules?|sampl\w*|apply|application|eligib\w*|score|threshold|pass\w*|"
                        r"sites?|clinics?|offices?|polic\w*|round|deadline|expir\w*|valid\w*|email|phone|call)\b")


def sentences(text: str) -> list[str]:
    return [s.strip(" ,-") for s in _SENTENCE.findall(text) if s.strip(" ,-")]


# "from what I can tell, our score came from spring 2025" states; it does not ask.
_HEDGE = re.compile(r"\b(from|as far as|by) what (i|we) (can |could )?(tell|see|gather|understand|read)\b")


# "When we submit the application, I understand there is an attestation.": a clause of time or
# condition before a statement; without a question mark it asks nothing.
_SUBORDINATE_STATEMENT = re.compile(r"^(when|once|after|before|while|since|as)\b[^,?]{3,80},\s*(i|we|our|they|there|it)\b(?!.*\?)")


def asks(sentence: str) -> bool:
    sentence = sentence.strip()
    if _SUBORDINATE_STATEMENT.match(sentence) and not sentence.endswith("?"):
        return False
    return bool(_ASKS.search(_HEDGE.sub("as far as i know", sentence)))


def questions(text: str) -> list[str]:
    """The question sentences of a normalized message, with double questions split in two."""
    found: list[str] = []
    context = statement = ""
    for sentence in sentences(text):
        if not asks(sentence):
            # "a hematologist's charts were excluded from the pool; what documentation would that
            # exclusion require?": a statement joined by a semicolon is the question's own subject.
            context = sentence if sentence.endswith(";") else ""
            statement = sentence
            continue
        if not context and statement and len(sentence.split()) <= 8 and re.search(r"\b(that|this|those|these)\b", sentence) \
                and not re.search(r"\b(that|this) (is|was|one)\b", sentence) and not _OWN_TOPIC.search(sentence):
            # "Dr. Nguyen's charts weren't in the pool. What paperwork does that require?": a short
            # question about "that" is about the statement just before it.
            sentence = f"{statement} {sentence}"
        statement = ""
        if context and re.match(r"(and|also|plus)\b", sentence):
            # "min OQS % needed; and what's the email?": a terse first question, then a second.
            found.append(context.rstrip(" ;"))
            context = ""
        if context:
            sentence, context = f"{context} {sentence}", ""
        parts = [p.strip(" ,-") for p in _INNER_SPLIT.split(sentence) if p and p.strip(" ,-")]
        # "...75.0 - which is where our projection sits - does that meet it?": a relative clause asks nothing.
        # "I'd like to know whether we apply together, and also whether you could give me the number":
        # the second "whether" asks as the first does.
        asking = [p for i, p in enumerate(parts) if (asks(p) or (i > 0 and p.startswith("whether "))) and (p.endswith("?") or not _RELATIVE.match(p))]
        # "..., and i'd like to know before i sit down with her, how many measures is it?": the wish to
        # know announces the question that follows; it asks nothing itself.
        asking = [p for i, p in enumerate(asking) if not (i + 1 < len(asking) and _ANNOUNCES.search(p))]
        found.extend(_ACKNOWLEDGED.sub("", _ENUMERATION.sub("", q) or q) or q for q in (asking or [sentence]))
    # "do we need a single tax ID? pls advise": a bare request to answer asks nothing more.
    kept = [q for q in found if not _BARE_REQUEST.match(q)]
    return kept if kept else found
