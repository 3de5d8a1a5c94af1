"""Bounds on what reading one message may cost.

The worker reads one message at a time, so a message that takes minutes to read holds up
every message behind it -- and after the lease runs out, the next worker too. Fuzzing
found shapes that did (tests/test_fuzz_email.py): the reply parser's patterns are
quadratic or worse in the length of a line and of a whitespace run, Python's HTMLParser
in unclosed tag soup, the standard library's header parser in long runs of encoded words,
and the MIME parser costs about a millisecond per part. Everything here is linear, and
nothing a person wrote to the help desk is lost in practice: the limits are far above any
real question."""

from __future__ import annotations

import re

MAX_READ = 50_000  # characters of a message's text that are read at all (some 8,000 words)
MAX_LINE = 400  # longest line the reply parser is given (longer ones are cut for it only)
MAX_HTML = 300_000  # characters of an HTML body that are converted
MAX_FIELD = 16_384  # bytes of one header field that are read (folded lines included)
MAX_PARTS = 1_000  # MIME boundary lines read; the rest of the message is not

_WS_RUN = re.compile(r"\s{16,}")
_LONG_LINE = re.compile(r"[^\n]{%d,}" % (MAX_LINE + 1))
_MARK = "\ue000"  # private use: never meaningful in mail
_SOFT_BREAK = f"{_MARK}\n{_MARK}"  # a break soft_wrap inserted, marked on both sides
_COMMENT, _COMMENT_END = re.compile(r"<!--"), re.compile(r"-->")
_LONE_LT = re.compile(r"<(?![^<>]*>)")
_DECLARATION = re.compile(r"<[!?][^<>]*>")
_BOUNDARY_LINE = re.compile(rb"^--", re.M)


def _squeeze(match: re.Match[str]) -> str:
    run = match.group()
    return "\n\n" if run.count("\n") >= 2 else "\n" if "\n" in run else " "


def squeeze_whitespace(text: str) -> str:
    """Runs of 16+ whitespace characters become one paragraph break, line break or space."""
    return _WS_RUN.sub(_squeeze, text)


def _wrap(match: re.Match[str]) -> str:
    line = match.group()
    return _SOFT_BREAK.join(line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE))


def soft_wrap(text: str) -> str:
    """Lines longer than MAX_LINE cut into pieces with marked breaks; `unwrap` joins them."""
    return _LONG_LINE.sub(_wrap, text.replace(_MARK, ""))


def unwrap(text: str) -> str:
    return text.replace(_SOFT_BREAK, "").replace(_MARK, "")


def drop_between(html: str, opening: re.Pattern[str], closing: re.Pattern[str], *, cut_unclosed: bool) -> str:
    """Every `opening` up to the next `closing` removed, in one pass (a regex such as
    `<blockquote.*?</blockquote>` is quadratic when closing tags are missing). An opening
    without a closing one ends the text when `cut_unclosed`, else it is left alone."""
    out, pos = [], 0
    while start := opening.search(html, pos):
        end = closing.search(html, start.end())
        if end is None:
            if cut_unclosed:
                out.append(html[pos:start.start()])
                pos = len(html)
            break
        out.append(html[pos:start.start()])
        pos = end.end()
    out.append(html[pos:])
    return "".join(out)


def tame_html(html: str) -> str:
    """HTML that html2text reads in linear time, showing the same text: long whitespace
    runs squeezed (insignificant in HTML), comments removed (an unclosed one hides the rest
    anyway), a '<' that never closes before the next '<' escaped as text, declarations
    (<!DOCTYPE>, <![CDATA[...]>, <?xml?>) dropped."""
    html = squeeze_whitespace(html[:MAX_HTML])
    html = drop_between(html, _COMMENT, _COMMENT_END, cut_unclosed=True)
    return _DECLARATION.sub("", _LONE_LT.sub("&lt;", html))


def cut_parts(raw: bytes) -> tuple[bytes, bool]:
    """`raw` up to its MAX_PARTS-th boundary line, and whether anything was cut."""
    for n, line in enumerate(_BOUNDARY_LINE.finditer(raw)):
        if n == MAX_PARTS:
            return raw[:line.start()], True
    return raw, False
