"""The question mix the channel benchmarks send, and the mail that carries it."""

from __future__ import annotations

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


def question_mail(n: int, tag: str = "") -> tuple[str, str, bytes]:
    """(sender, Message-ID, raw bytes) of the n-th benchmark mail; `tag` keeps runs apart."""
    sender = f"quality{n}@practice{n % 50}.example.org"
    msg = EmailMessage()
    msg["From"] = f"Quality Lead {n} <{sender}>"
    msg["To"] = HELP
    msg["Subject"] = f"Question {n}"
    msg["Date"] = "Mon, 2 Mar 2026 08:41:17 -0600"
    msg["Message-ID"] = f"<bench-{tag}{'-' if tag else ''}{n}-{os.getpid()}@practice.example.org>"
    msg.set_content(f"Hello,\n\n{QUESTIONS[n % len(QUESTIONS)]}\n\nThanks,\nQuality Lead\n")
    return sender, msg["Message-ID"], msg.as_bytes()
