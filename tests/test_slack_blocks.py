"""The pure parts of the Slack adapter: Block Kit rendering and event triage."""

from __future__ import annotations

import pytest

from qopi_bot_handlers.slack.blocks import answer_message, staff_case_message
from qopi_bot_handlers.slack.events import BadRequest, plain_text, triage, wanted_event
from qopi_bot.cases import CaseSummary
from qopi_bot.models import Answer, Intent, MissingFact, Outcome, Verdict
from qopi_bot.wording import QUESTIONS
from tests.fakes import slack_signing as ss


def _texts(blocks: list[dict]) -> list[str]:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])] + [e.get("text", "") for e in b.get("elements", []) if isinstance(e.get("text"), str)]
    return out


def test_not_eligible_answer_has_verdict_reason_rules_and_escapes_text() -> None:
    answer = Answer(intent=Intent.ELIGIBILITY, outcome=Outcome.ANSWERED, verdict=Verdict.NOT_ELIGIBLE,
                    rules=["ELIG-SCORE"], facts={"score": 74.99, "threshold": 75}, text="74.99% < 75% & that fails (ELIG-SCORE).")
    text, blocks = answer_message(answer)
    shown = _texts(blocks)
    assert shown[0] == ":x: *Not eligible yet*"
    assert "74.99% &lt; 75% &amp; that fails (ELIG-SCORE)." in shown
    assert "*Score:*\n74.99%" in shown
    assert shown[-1] == "Rules: `ELIG-SCORE`"
    assert text.startswith("74.99% < 75%") and text.endswith("[rules: ELIG-SCORE]")  # plain fallback unescaped


def test_follow_up_question_is_set_apart() -> None:
    asked = QUESTIONS[MissingFact.ROUND]
    answer = Answer(intent=Intent.VALIDITY, outcome=Outcome.NEEDS_INFO, rules=["VALIDITY"], missing=["round"],
                    question=MissingFact.ROUND, text=f"A score is good for one year (VALIDITY). {asked}")
    _, blocks = answer_message(answer)
    shown = _texts(blocks)
    assert shown[0].startswith(":grey_question:")
    assert shown[1] == "A score is good for one year (VALIDITY)."
    assert any(t.startswith(":speech_balloon: *Question for you:* Which round") for t in shown)
    assert {"type": "divider"} in blocks


def test_escalated_answer_names_the_case_and_long_text_is_cut() -> None:
    answer = Answer(intent=Intent.SUBSET, outcome=Outcome.ESCALATED, verdict=None, rules=["ENTITY-SUBSET"],
                    case_id="QCP-0007", text="x" * 5000)
    _, blocks = answer_message(answer)
    assert blocks[0]["text"]["text"] == ":busts_in_silhouette: *Passed to QCP staff* (QCP-0007)"
    assert all(len(t) <= 3000 for t in _texts(blocks))
    assert "Case QCP-0007" in _texts(blocks)[-1]


@pytest.mark.parametrize("status,buttons", [("open", ["case_claim", "case_reply", "case_resolve"]), ("claimed", ["case_reply", "case_resolve"]),
                                            ("resolved", [])])
def test_staff_case_buttons_follow_the_status(status: str, buttons: list[str]) -> None:
    summary = CaseSummary(id="QCP-0002", status=status, reason="ENTITY-SUBSET", why="subset <b>", channel="Slack",
                          question="Only downtown?", facts={"wants_subset": True}, decision_text="Staff decide.",
                          rules=["ENTITY-SUBSET"], claimed_by="USTAFF1" if status != "open" else None, recent=[])
    _, blocks = staff_case_message(summary)
    actions = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == buttons
    assert all(e["value"] == "QCP-0002" for b in blocks if b["type"] == "actions" for e in b["elements"])
    shown = "\n".join(_texts(blocks))
    assert "subset &lt;b&gt;" in shown and "wants_subset=True" in shown
    if status != "open":
        assert "by <@USTAFF1>" in shown


def test_plain_text_unwraps_slack_markup() -> None:
    assert plain_text("<@UBOT> is <https://x.org|this> ok &amp; <mailto:a@b.org|a@b.org>?", "UBOT") == "is this ok & a@b.org?"
    assert plain_text("ask <@U2> about <#C1|general>") == "ask @U2 about general"


def test_triage_keeps_only_what_needs_an_answer() -> None:
    assert wanted_event(ss.app_mention("hi"), "UBOT")
    assert not wanted_event(ss.app_mention("hi", channel="D1"), "UBOT")  # message.im answers DMs
    assert wanted_event(ss.dm_message("hi"), "UBOT")
    assert not wanted_event(ss.channel_message("hi"), "UBOT")
    assert wanted_event(ss.thread_message("Fall 2025", "U1", "C1", ss.next_ts()), "UBOT")
    assert not wanted_event(ss.thread_message("<@UBOT> Fall 2025", "U1", "C1", ss.next_ts()), "UBOT")
    assert not wanted_event(ss.bot_message("x", subtype=None), "UBOT")
    assert not wanted_event(ss.message_changed("x"), "UBOT")
    found = triage(ss.encode_json(ss.event_callback(ss.app_mention("hi", channel="C1", ts="1.5"), event_id="EvX")),
                   "application/json")
    assert found.inbound is not None and found.inbound.external_id == "EvX"
    assert found.inbound.conversation == "slack:T1:C1:1.5"
    with pytest.raises(BadRequest):
        triage(b"{}", "text/plain")


def test_manifest_asks_for_what_the_app_uses() -> None:
    import yaml

    from tests.slack_harness import ROOT

    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "channels:history", "groups:history",
        "channels:read", "groups:read",  # users.conversations, for the catch-up after an outage
        "commands", "users:read"}
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im", "message.channels",
                                                                  "message.groups"}
    (command,) = manifest["features"]["slash_commands"]
    urls = {settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"], command["url"]}
    assert command["command"] == "/qopi" and settings["interactivity"]["is_enabled"]
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")


def test_a_multi_line_answer_keeps_the_step_alone_and_what_was_read_in_the_context() -> None:
    text = ("Yes, you are eligible to apply: 81% meets the 75% threshold.\n"
            "Next step: at application and payment you affirm the 20 Certification Standards.\n"
            "This assumes the score is from the Certification Pathway.\n"
            "I read: 81%, Fall 2025.")
    answer = Answer(intent=Intent.ELIGIBILITY, outcome=Outcome.ANSWERED, verdict=Verdict.ELIGIBLE,
                    rules=["ELIG-SCORE"], facts={"score": 81}, text=text)
    _, blocks = answer_message(answer)
    shown = _texts(blocks)
    assert ":arrow_right: Next step: at application and payment you affirm the 20 Certification Standards." in shown
    reason = shown[1]
    assert reason.startswith("Yes, you are eligible") and "This assumes" in reason and "Next step" not in reason
    assert "I read" not in reason and shown[-1].startswith("I read: 81%, Fall 2025.")
