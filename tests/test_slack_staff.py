"""Staff escalation in Slack, end to end: case posted with buttons, only staff may act, staff
replies reach the practice's DM, the practice's follow-ups reach the case thread."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.parse

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import (  # noqa: F401  (fixtures)
    STAFF, STAFF_CHANNEL, ROOT, Stand, block_text, env, fake, posts_to, process_env, settle, stand,
)
from qopi_bot.records import CaseRecord

PRACTICE, PRACTICE_DM, BYSTANDER = "UPRAC1", "DPRAC1", "UOTHER1"


def _buttons(params: dict) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in params.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]}


async def _case(stand: Stand, *, until: str | None = None, timeout: float = 10.0) -> CaseRecord:
    deadline = time.monotonic() + timeout
    while True:
        case = await stand.service.store.get_case(1)
        if case is not None and (until is None or case.status == until) and case.staff_slack_ts:
            return case
        assert time.monotonic() < deadline, f"case 1 not in state {until}: {case and case.status}"
        await asyncio.sleep(0.03)


async def _click(stand: Stand, action: str, user: str, case: CaseRecord) -> int:
    body = ss.block_action_form(action, case.id, user_id=user, channel_id=STAFF_CHANNEL,
                                message_ts=str(case.staff_slack_ts))
    status, _ = await stand.send(body)
    return status


def _cases_list(env: dict[str, str]) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "qopi_bot.cli", "cases", "list", "--json"], cwd=ROOT,
                         env=process_env(env), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def test_staff_case_flow(stand: Stand, fake: FakeSlackAPI, env: dict[str, str]) -> None:
    # 1. A subset question in a DM opens a case, posted to the staff channel with buttons.
    await stand.event(ss.dm_message("We only want to certify our downtown site", user=PRACTICE, channel=PRACTICE_DM))
    (staff_post,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10,
                                              predicate=lambda c: c.params["channel"] == STAFF_CHANNEL)
    shown = block_text(staff_post.params)
    assert "QCP-0001" in shown and "ENTITY-SUBSET" in shown and "downtown site" in shown
    assert "Slack" in shown  # which channel the practice used
    assert _buttons(staff_post.params) == {"case_claim": "QCP-0001", "case_reply": "QCP-0001", "case_resolve": "QCP-0001"}
    (practice_answer,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10,
                                                   predicate=lambda c: c.params["channel"] == PRACTICE_DM)
    assert "QCP-0001" in practice_answer.params["text"]
    case = await _case(stand)
    assert case.staff_slack_channel == STAFF_CHANNEL and case.staff_slack_ts == staff_post.response["ts"]

    # 2. Someone who is not staff clicks Claim: refused privately, nothing changes.
    assert await _click(stand, "case_claim", BYSTANDER, case) == 200
    (refusal,) = await fake.wait_for_async("chat.postEphemeral", 1, timeout=10)
    assert refusal.params["user"] == BYSTANDER and "Only QCP staff" in refusal.params["text"]
    await settle(0.3)
    assert (await stand.service.store.get_case(1)).status == "open"  # type: ignore[union-attr]
    assert fake.calls_for("chat.update") == []

    # 3. Staff claims: the case message shows who has it, and Claim is gone.
    assert await _click(stand, "case_claim", STAFF[0], case) == 200
    await _case(stand, until="claimed")
    (update,) = await fake.wait_for_async("chat.update", 1, timeout=10)
    assert update.params["channel"] == STAFF_CHANNEL and update.params["ts"] == case.staff_slack_ts
    assert f"Claimed by <@{STAFF[0]}>" in block_text(update.params)
    assert _buttons(update.params) == {"case_reply": "QCP-0001", "case_resolve": "QCP-0001"}

    # 4. A bystander's remark in the case thread stays there; a staff reply is relayed to the DM.
    remark = "I think they could just apply anyway"
    await stand.event(ss.thread_message(remark, user=BYSTANDER, channel=STAFF_CHANNEL, thread_ts=case.staff_slack_ts))
    reply = "Yes: send us the site list and we will confirm before you participate."
    await stand.event(ss.thread_message(reply, user=STAFF[0], channel=STAFF_CHANNEL, thread_ts=case.staff_slack_ts))
    relays = await fake.wait_for_async("chat.postMessage", 2, timeout=10,
                                       predicate=lambda c: c.params["channel"] == PRACTICE_DM)
    relayed = relays[1].params
    assert reply in relayed["text"] and "QCP-0001" in relayed["text"] and not relayed.get("thread_ts")
    await settle(0.3)
    assert not any(remark in p["text"] for p in fake.posts())

    # 5. The practice's follow-up in its DM goes into the case thread.
    follow_up = "The downtown site has three oncologists and its own tax ID."
    await stand.event(ss.dm_message(follow_up, user=PRACTICE, channel=PRACTICE_DM))
    notes = await fake.wait_for_async("chat.postMessage", 1, timeout=10,
                                      predicate=lambda c: c.params.get("thread_ts") == case.staff_slack_ts)
    assert notes[0].params["channel"] == STAFF_CHANNEL and follow_up in notes[0].params["text"]

    # 6. Staff resolves; the CLI (a separate process on the same database) agrees.
    assert await _click(stand, "case_resolve", STAFF[1], case) == 200
    await _case(stand, until="resolved")
    await fake.wait_for_async("chat.update", 2, timeout=10)
    listed = await asyncio.to_thread(_cases_list, env)
    assert [(c["id"], c["status"], c["channel"]) for c in listed] == [("QCP-0001", "resolved", "slack")]
    assert len(posts_to(fake, STAFF_CHANNEL, thread_ts=None)) == 2  # the case message and one note, nothing more


async def test_slash_command_case_reply_reaches_the_user_in_a_dm(stand: Stand, fake: FakeSlackAPI) -> None:
    await stand.send(ss.slash_command_form("We only want to certify our downtown site", user_id="UCMD1",
                                           channel_id="CPUBLIC", response_url=fake.response_url("c")))
    await fake.wait_for_async("response_url", 1, timeout=10)
    case = await _case(stand)
    await stand.event(ss.thread_message("We will call you tomorrow.", user=STAFF[0], channel=STAFF_CHANNEL,
                                        thread_ts=str(case.staff_slack_ts)))
    (dm,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10,
                                      predicate=lambda c: c.params["channel"] == fake.dm_channel_for("UCMD1"))
    assert "We will call you tomorrow." in dm.params["text"]
    assert fake.calls_for("conversations.open")[0].params["users"] == "UCMD1"
    assert posts_to(fake, "CPUBLIC") == []  # never in public where the command was typed


async def test_case_note_waits_for_the_case_message(stand: Stand, fake: FakeSlackAPI) -> None:
    """If the staff post is slow to go out, the practice's follow-up is held, not lost or misplaced."""
    fake.fail_next("chat.postMessage", 503, times=1)
    await stand.event(ss.dm_message("Can we get an exception for special circumstances?", user="UEXC1", channel="DEXC1"))
    await stand.event(ss.dm_message("We had a flood in our main site.", user="UEXC1", channel="DEXC1"))
    case = await _case(stand)
    notes = await fake.wait_for_async("chat.postMessage", 1, timeout=10,
                                      predicate=lambda c: c.ok and c.params.get("thread_ts") == case.staff_slack_ts)
    assert "flood" in notes[0].params["text"]


def _submission(user: str, view: dict, text: str, view_id: str = "V123") -> bytes:
    payload = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": user},
               "view": {**view, "id": view_id, "hash": "h1", "state": {"values": {"reply": {"text": {"type": "plain_text_input",
                                                                                              "value": text}}}}}}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


async def test_reply_button_opens_a_form_whose_answer_reaches_the_practice(stand: Stand, fake: FakeSlackAPI) -> None:
    await stand.event(ss.dm_message("Can I talk to a person please?", user=PRACTICE, channel=PRACTICE_DM))
    case = await _case(stand)

    # Not staff: refused, no form.
    assert await _click(stand, "case_reply", BYSTANDER, case) == 200
    (refusal,) = await fake.wait_for_async("chat.postEphemeral", 1, timeout=10)
    assert refusal.params["user"] == BYSTANDER and fake.calls_for("views.open") == []

    # Staff: the form opens for this case.
    assert await _click(stand, "case_reply", STAFF[0], case) == 200
    (opened,) = await fake.wait_for_async("views.open", 1, timeout=10)
    view = opened.params["view"] if isinstance(opened.params["view"], dict) else json.loads(opened.params["view"])
    assert view["callback_id"] == "case_reply" and view["private_metadata"] == "QCP-0001" and opened.params["trigger_id"]

    # A forged submission from a non-staff user is not relayed; the staff one is, once.
    assert (await stand.send(_submission(BYSTANDER, view, "not from staff", view_id="VX")))[0] == 200
    answer = "We can talk on Tuesday at 10am Eastern; we will call the number on file."
    assert (await stand.send(_submission(STAFF[0], view, answer)))[0] == 200
    assert (await stand.send(_submission(STAFF[0], view, answer), retry_num=1))[0] == 200  # a retry of the same submission
    relays = await fake.wait_for_async("chat.postMessage", 2, timeout=10,
                                       predicate=lambda c: c.params["channel"] == PRACTICE_DM)
    await settle(0.4)
    practice_posts = [c.params["text"] for c in fake.calls_for("chat.postMessage") if c.ok and c.params["channel"] == PRACTICE_DM]
    assert sum(answer in t for t in practice_posts) == 1 and not any("not from staff" in t for t in practice_posts)
    assert "QCP-0001" in relays[-1].params["text"]
    events = (await stand.service.store.get_case(1)).events  # type: ignore[union-attr]
    assert [e.author for e in events if e.kind == "staff_reply"] == [STAFF[0]]
