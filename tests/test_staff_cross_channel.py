"""Staff escalation across channels, end to end (issue 7): the Procfile's web and worker
processes share one SQLite file; Slack goes to a local Web API stand-in, mail to a local SMTP
sink. A case opened in Slack is answered by staff email, and a case opened by email is
answered in the Slack case thread -- each reaching the practice where it asked."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.email_support import HELP, STAFF as STAFF_EMAIL, WorkerProcess, question_mail
from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.smtp_sink import ReceivedMessage, SmtpSink, send_eml
from tests.waiting import wait_until
from tests.slack_harness import ROOT, STAFF, STAFF_CHANNEL, process_env, slack_env
from tests.test_slack_process import WebProcess

pytestmark = pytest.mark.slow
PRACTICE, PRACTICE_DM, BYSTANDER = "UPRAC9", "DPRAC9", "UOTHER9"
PRACTICE_MAIL = "maria.lopez@harbor-onc.example.org"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    return wait_until(probe, timeout, what)  # type: ignore[no-any-return]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[WebProcess, WorkerProcess, FakeSlackAPI, SmtpSink, dict[str, str]]]:
    with FakeSlackAPI() as fake, SmtpSink() as sink:
        env = slack_env(tmp_path, fake, QOPI_SMTP_RELAY=sink.address, QOPI_HELP_ADDRESS=HELP,
                        QOPI_STAFF_EMAIL=STAFF_EMAIL, QOPI_LEASE_SECONDS="3")
        worker = WorkerProcess(process_env(env), tmp_path / "worker.log")
        worker.wait_listening()
        web = WebProcess(env, tmp_path / "web.log")
        try:
            yield web, worker, fake, sink, env
        finally:
            web.stop()
            worker.terminate()


def _mail(worker: WorkerProcess, msg: Any, sender: str) -> None:
    send_eml("127.0.0.1", worker.port, bytes(msg), sender, HELP)


def _staff_mail(sink: SmtpSink, case_id: str) -> ReceivedMessage:
    return eventually(lambda: next((m for m in sink.messages_to(STAFF_EMAIL) if f"[{case_id}]" in m.subject), None),
                      f"the staff mail for {case_id}")


def _reply_to(original: ReceivedMessage, sender: str, text: str) -> Any:
    msg = question_mail(text, subject=f"Re: {original.subject}", sender=sender,
                        in_reply_to=original.message["Message-ID"], references=[original.message["Message-ID"]])
    return msg


def _cases(env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(["qopi-bot", "cases", "list", "--json"], cwd=ROOT, env=process_env(env),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_slack_case_answered_by_email_and_email_case_answered_in_slack(stack: Any) -> None:
    web, worker, fake, sink, env = stack

    # A. A subset question in a Slack DM opens QCP-0001: staff see it in Slack and by email.
    assert web.post(ss.event_callback(ss.dm_message("We only want to certify our downtown site", user=PRACTICE,
                                                    channel=PRACTICE_DM))) == 200
    staff_post = eventually(lambda: next((c for c in fake.posts() if c["channel"] == STAFF_CHANNEL), None), "the Slack case post")
    assert "QCP-0001" in staff_post["text"]
    case_mail = _staff_mail(sink, "QCP-0001")
    assert "downtown site" in case_mail.text and "Slack" in case_mail.text

    # A non-staff reply to the case mail is not relayed; a staff reply reaches the practice's DM.
    _mail(worker, _reply_to(case_mail, "someone@elsewhere.example.net", "Just apply anyway."), "someone@elsewhere.example.net")
    staff_answer = "Thanks - send us the list of sites and we'll confirm before you participate."
    _mail(worker, _reply_to(case_mail, STAFF_EMAIL, staff_answer), STAFF_EMAIL)
    relayed = eventually(lambda: next((c for c in fake.posts() if c["channel"] == PRACTICE_DM and staff_answer in c["text"]), None),
                         "the staff email reply in the practice's DM")
    assert "QCP-0001" in relayed["text"]
    time.sleep(0.5)
    assert not any("Just apply anyway" in c["text"] for c in fake.posts())

    # B. A subset question by email opens QCP-0002, posted to the Slack staff channel.
    question = question_mail("We would like to certify only our infusion center. Is that possible?",
                             subject="Certifying part of our practice", sender=PRACTICE_MAIL)
    _mail(worker, question, PRACTICE_MAIL)
    case2 = eventually(lambda: next((c for c in fake.posts() if c["channel"] == STAFF_CHANNEL and "QCP-0002" in c["text"]), None),
                       "QCP-0002 in the staff channel")
    posted = next(c for c in fake.calls_for("chat.postMessage") if c.ok and "QCP-0002" in c.params["text"])
    first_reply = eventually(lambda: sink.messages_to(PRACTICE_MAIL), "the bot's first reply to the practice")[0]
    assert "QCP-0002" in first_reply.text and case2

    # A bystander's remark in the Slack thread stays there; a staff member's reply goes out by email, threaded.
    thread_ts = posted.response["ts"]
    assert web.post(ss.event_callback(ss.thread_message("probably fine", user=BYSTANDER, channel=STAFF_CHANNEL,
                                                        thread_ts=thread_ts))) == 200
    answer = "A subset can be considered; please call us before the next round."
    assert web.post(ss.event_callback(ss.thread_message(answer, user=STAFF[0], channel=STAFF_CHANNEL,
                                                        thread_ts=thread_ts))) == 200
    relay = eventually(lambda: next((m for m in sink.messages_to(PRACTICE_MAIL) if answer in m.text), None),
                       "the Slack staff reply by email")
    assert relay.subject == "Re: Certifying part of our practice"
    assert question["Message-ID"] in (relay.message["References"] or "")
    assert relay.message["In-Reply-To"] and relay.message["Auto-Submitted"] == "auto-replied"
    time.sleep(0.5)
    assert not any("probably fine" in m.text for m in sink.messages_to(PRACTICE_MAIL))

    # C. Staff resolve the first case from Slack; the CLI on the same database agrees.
    assert web.post(ss.block_action_form("case_resolve", "QCP-0001", user_id=STAFF[1], channel_id=STAFF_CHANNEL,
                                         message_ts=str(staff_post.get("ts") or ""))) == 200
    listed = eventually(lambda: (lambda cs: cs if {c["id"]: c["status"] for c in cs}.get("QCP-0001") == "resolved" else None)(_cases(env)),
                        "QCP-0001 resolved in cases list")
    assert {(c["id"], c["channel"]) for c in listed} == {("QCP-0001", "slack"), ("QCP-0002", "email")}
