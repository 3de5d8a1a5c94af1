"""The answer mail written directly (qopi_bot_handlers.email.wire) is byte for byte the mail the
EmailMessage way gives, or it declines: checked on realistic and hostile generated input."""

from __future__ import annotations

import datetime as dt
import random
import string

from email.utils import format_datetime

from qopi_bot_handlers.email.compose import WIRE_POLICY, build_message
from qopi_bot_handlers.email.parse import parse_mail
from qopi_bot_handlers.email.wire import reply_wire

NOW = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
# Ids the email package rewrites or decodes (encoded words, comments, quotes, a second @, a literal).
ODD_IDS = ["<=?utf-8?q?x?=@y>", "<a(b)@c>", "<abc>", '<a"b@c>', "<a@b@c>", "<x@[1.2.3.4]>", "<a;b@c>", "<a..b@c>"]
ANSWER = ("Yes, you are eligible to apply: 81% meets the 75% threshold.\nSecond line & <b>.\n\n"
          "-- \nQOPI Certification help desk (automated answers from the program rules)\n")


def _both(seed: int, **kw: object) -> tuple[bytes | None, bytes]:
    random.seed(seed)  # the same MIME boundary for both
    fast = reply_wire(**kw, date=format_datetime(NOW))  # type: ignore[arg-type]
    random.seed(seed)
    return fast, build_message(**kw, now=NOW).as_bytes(policy=WIRE_POLICY)  # type: ignore[arg-type]


def test_an_ordinary_answer_is_written_directly_and_identically() -> None:
    fast, slow = _both(1, help_address="help@qopi-bot.test", to="quality1@practice1.example.org",
                       to_name="Quality Lead 1", subject="Re: Question 1", text=ANSWER + "Héllo — 81%\n",
                       message_id="<1.qopi@qopi-bot.test>", in_reply_to="<q1@practice.example.org>",
                       references=["<q0@practice.example.org>", "<q1@practice.example.org>"],
                       auto_submitted="auto-replied")
    assert fast == slow
    mail = parse_mail(fast)
    assert mail.subject == "Re: Question 1" and mail.from_address == "help@qopi-bot.test"


def test_generated_input_is_identical_or_declined() -> None:
    rng = random.Random(15)
    letters = string.ascii_letters + " .,\n<>&\"é—"
    hostile = string.ascii_letters + string.digits + " .,:;!?'\"()<>@&%-_/\n\t=é—’ü€\r"

    def text(n: int, alphabet: str) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    written = 0
    for seed in range(6000):
        odd_ids = seed % 2 == 1  # every other case also tries ids the email package would rewrite
        kw = dict(
            help_address="help@qopi-bot.test",
            to=rng.choice(["q@x.org", "quality1@practice1.example.org", "a.b+c@x-y.org", 'odd"@x.org', "ü@x.org"]),
            to_name=rng.choice(["", "Quality Lead", "Dr. Smith", "Ann O'Neil", "José", "a  b", " lead", "=?utf-8?q?b?=",
                                "a=b", "#1 lead", "x{y}",
                                text(20, string.ascii_letters + " ")]),
            subject=rng.choice(["Re: Question 7", "Re: " + text(40, string.printable[:94] + " "), "Re: =?utf-8?q?x?=",
                                "Re: Résumé", "Re: " + "w " * 600]),
            text=rng.choice([ANSWER, "", text(300, letters), text(300, hostile), "x" * rng.choice([997, 998, 999]) + "\n"]),
            message_id=rng.choice(ODD_IDS) if odd_ids and seed % 3 == 0 else f"<{seed}.qopi@qopi-bot.test>",
            in_reply_to=rng.choice([None, "<c@d>", "<x y@z>", *(ODD_IDS if odd_ids else [])]),
            references=rng.choice([[], ["<a@b>"], ["<a@b>", "<c@d>"], ["<" + "x" * 400 + "@y>"] * 3, ["<é@x>"],
                                   *([[rng.choice(ODD_IDS)], ["<a@b>", rng.choice(ODD_IDS)]] if odd_ids else [])]),
            auto_submitted=rng.choice(["auto-replied", "auto-generated"]),
        )
        fast, slow = _both(seed, **kw)
        if fast is not None:
            written += 1
            assert fast == slow, kw
    assert written > 50  # the direct way really is taken (most generated input is meant to be declined)
