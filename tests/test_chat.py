"""`qopi-bot chat` as a person uses it: several turns, /why, /facts, /quit."""

from __future__ import annotations

import subprocess

from tests.conftest import QOPI_BOT, ROUNDS_FIXTURE, Cli


def test_chat_multi_turn_with_rule_trace(cli: Cli) -> None:
    session = "\n".join([
        "Are we eligible to apply?",
        "81% on the certification pathway, Fall 2025",
        "/why",
        "/facts",
        "/today 2026-12-20",
        "Can we still apply?",
        "/quit",
    ]) + "\n"
    done = subprocess.run([QOPI_BOT, "chat", "--today", "2026-03-01", "--rounds", str(ROUNDS_FIXTURE)], input=session,
                          capture_output=True, text=True, env={**cli.env, "COLUMNS": "200"}, timeout=60)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "needs info" in out and "I need to know: score" in out          # asked for the missing fact
    assert "eligible" in out and "11 December 2026" in out                # answered on the second turn
    assert "ELIG-SCORE: passed" in out and "The passing threshold for these measures in aggregate is 75%" in out
    assert "'score': 81.0" in out                                         # /facts shows what it remembers
    assert "answering as of 2026-12-20" in out
    assert "not eligible" in out and "expired" in out                     # same thread, a later date


def test_chat_ends_cleanly_on_end_of_input(cli: Cli) -> None:
    done = subprocess.run([QOPI_BOT, "chat"], input="hello\n", capture_output=True, text=True, env=cli.env, timeout=60)
    assert done.returncode == 0 and "QOPI Certification" in done.stdout and "Traceback" not in done.stderr
