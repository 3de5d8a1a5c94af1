"""What a reminder request schedules (pure, from the rounds calendar) and how requests are
read: through the CLI as a process, where reminders cannot be delivered and it says so."""

from __future__ import annotations

import datetime as dt

from qopi_bot.core.kb import Knowledge
from qopi_bot.models import RoundRef
from qopi_bot.reminders import confirmation, lead_times, schedule
from tests.conftest import Cli, d

FALL_2025 = RoundRef(season="fall", year=2025)  # valid until Fall 2026 closes: 2026-12-11 in the fixture


def test_default_schedule_is_30_and_7_days_before_the_last_day(kb: Knowledge) -> None:
    s = schedule(81.0, FALL_2025, d("2026-05-01"), kb, [30, 7])
    assert s.status == "scheduled" and s.last_day == d("2026-12-11")
    assert [(i.days_before, i.due) for i in s.items] == [(30, d("2026-11-11")), (7, d("2026-12-04"))]
    text = confirmation(s, [30, 7], kb)
    assert "11 November 2026 (30 days before) and 4 December 2026 (7 days before)" in text
    assert "81%" in text and "Fall 2025" in text and "stop the reminders" in text


def test_dates_already_passed_are_not_scheduled_and_too_close_says_so(kb: Knowledge) -> None:
    s = schedule(81.0, FALL_2025, d("2026-11-20"), kb, [30, 7])
    assert [i.days_before for i in s.items] == [7]
    close = schedule(81.0, FALL_2025, d("2026-12-06"), kb, [30, 7])
    assert close.status == "too_close" and close.items == []
    assert "fewer than 7 days away" in confirmation(close, [30, 7], kb)


def test_expired_failing_and_unpublished(kb: Knowledge) -> None:
    assert schedule(81.0, FALL_2025, d("2026-12-12"), kb, [30, 7]).status == "expired"
    assert schedule(74.99, FALL_2025, d("2026-05-01"), kb, [30, 7]).status == "below_threshold"
    waiting = schedule(80.0, RoundRef(season="fall", year=2026), d("2026-12-20"), kb, [30, 7])
    assert waiting.status == "waiting" and [i.kind for i in waiting.items] == ["date_published"]
    assert waiting.items[0].due is None
    assert "not published yet" in confirmation(waiting, [30, 7], kb)
    assert schedule(80.0, None, d("2026-05-01"), kb, [30, 7]).status == "no_round"


def test_a_named_lead_time_is_added_to_the_default() -> None:
    assert lead_times((30, 7), 14) == [30, 14, 7]
    assert lead_times((30, 7), 30) == [30, 7]


def test_requests_are_read_and_keep_the_threads_topic(cli: Cli) -> None:
    asks = ["Remind me before our score expires", "can you ping us a month before?", "set a reminder",
            "We scored 81% in Fall 2025. Please set up a reminder before it lapses"]
    answers = cli.stream([{"text": t, "today": "2026-05-01"} for t in asks])
    for text, answer in zip(asks, answers):
        assert answer["intent"] == "validity", (text, answer)
        assert "Slack or by email" in answer["text"], text
    assert answers[0]["missing"] == ["round"]  # a reminder needs the round, so it is asked for
    assert answers[3]["facts"]["valid_until"] == "2026-12-11"
    # In a thread about eligibility, the request keeps that topic.
    thread = cli.stream([{"text": "We scored 81% in Fall 2025, are we eligible?", "conversation": "t"},
                         {"text": "great, remind us before it expires", "conversation": "t"},
                         {"text": "stop the reminders", "conversation": "t"}])
    assert [a["intent"] for a in thread] == ["eligibility", "eligibility", "eligibility"]
    assert thread[2]["text"].startswith("There are no reminders in this conversation to stop.")
    # Not requests: a question about the rules, a contact request.
    others = cli.stream(["I need a reminder of the rules for multi-site practices", "Can someone email me?"])
    assert all("Slack or by email" not in a["text"] for a in others)
    assert others[1]["intent"] == "human"


def test_a_failing_score_is_named_against_the_threshold_in_knowledge(kb: Knowledge) -> None:
    failing = schedule(74.99, FALL_2025, d("2026-05-01"), kb, [30, 7])
    assert f"below the {kb.score_threshold:g}% threshold" in confirmation(failing, [30, 7], kb)
