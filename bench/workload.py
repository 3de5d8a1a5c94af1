"""The question mix the channel benchmarks send, and the mail that carries it.

Two mixes (BENCH_MIX): `repeated` (the default) sends the six QUESTIONS over and over, the way
a deadline day repeats the same few questions, so a message read before is answered from
memory (qopi_bot.understanding.memo); `unique` greets from a different made-up clinic in every
message, so every message is read from scratch: the worst case for understanding."""

from __future__ import annotations

import itertools
import os
from email.message import EmailMessage

HELP = "help@qopi-bot.test"
QUESTIONS = [
    "Our OQS was 81% in Fall 2025 on the certification pathway. Are we eligible?",
    "Is 74.99% enough to pass?",
    "How long is a Spring 2025 score valid?",
    "We have three sites that share policies. Do we apply together?",
    "How many certification standards are there?",
    "Which modules do we need to submit data for?",
]
MIX = os.environ.get("BENCH_MIX", "repeated")
if MIX not in ("repeated", "unique"):
    raise SystemExit(f"BENCH_MIX must be 'repeated' or 'unique', not {MIX!r}")


def _clinic(n: int) -> str:
    """A made-up clinic name of letters only (a number could be read as a score)."""
    letters = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[rest] + letters
    return "Q" + letters + "ville"


_CLINICS = itertools.count()  # every call a new clinic: warm-up and repeated rounds never send a text twice


def question(n: int) -> str:
    """The n-th question of the mix in use."""
    text = QUESTIONS[n % len(QUESTIONS)]
    return f"Hello from the {_clinic(next(_CLINICS))} clinic. {text}" if MIX == "unique" else text


def question_mail(n: int, tag: str = "") -> tuple[str, str, bytes]:
    """(sender, Message-ID, raw bytes) of the n-th benchmark mail; `tag` keeps runs apart."""
    sender = f"quality{n}@practice{n % 50}.example.org"
    msg = EmailMessage()
    msg["From"] = f"Quality Lead {n} <{sender}>"
    msg["To"] = HELP
    msg["Subject"] = f"Question {n}"
    msg["Date"] = "Mon, 2 Mar 2026 08:41:17 -0600"
    msg["Message-ID"] = f"<bench-{tag}{'-' if tag else ''}{n}-{os.getpid()}@practice.example.org>"
    msg.set_content(f"Hello,\n\n{question(n)}\n\nThanks,\nQuality Lead\n")
    return sender, msg["Message-ID"], msg.as_bytes()
