"""Staff authority by email can't be forged (issue 14, contract section 8).

The attack: mail to the help address with From: set to a staff address and [QCP-0003] in
the subject used to be relayed to that practice from the help address. Now a reply is
relayed only when it names the case mail's Message-ID, which carries a secret token. All
over SMTP on loopback, into a real worker with a real SQLite file; the CLI as a process."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path

import pytest
import structlog

from qopi_bot.logs import configure_logging
from qopi_bot.records import parse_case_label
from tests.conftest import Cli
from tests.email_support import CORPUS, STAFF, reply_text, running_worker, send, settings_for, settle
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)

DANA = "dana.whitfield@riverbend-onc.example.org"
SUBSET_ID = "<20260310142000.9C1D2E3F40@mail.riverbend-onc.example.org>"
PLACEHOLDER = b"<case-QCP-0001@qopi-bot.test>"
SECRET_LINE = b"list of oncologists"  # a phrase of the staff reply's body


def staff_reply(in_reply_to: str | None, label: str, extra_headers: bytes = b"") -> bytes:
    raw = (CORPUS / "27_staff_reply_case.eml").read_bytes().replace(b"[QCP-0001]", f"[{label}]".encode())
    if in_reply_to is None:
        raw = re.sub(rb"^(In-Reply-To|References): .*\n", b"", raw, flags=re.M)
    else:
        raw = raw.replace(PLACEHOLDER, in_reply_to.encode())
    return extra_headers + raw


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    old = structlog.get_config()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("json", logging.INFO)
    yield buffer
    structlog.configure(**old)
    for handler in [h for h in logging.getLogger().handlers if h.get_name() == "qopi-bot"]:
        logging.getLogger().removeHandler(handler)


async def _open_case(worker, smtp_sink: SmtpSink) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    await send(worker, (CORPUS / "20_subset_downtown_site.eml").read_bytes(), DANA)
    await settle(worker.store)
    [case_mail] = smtp_sink.messages_to(STAFF)
    smtp_sink.clear()
    return case_mail.subject[1:9], case_mail.message["Message-ID"]


FORGERIES = {
    "subject_tag_only": lambda label, real: None,
    "guessed_token": lambda label, real: re.sub(r"-[A-Za-z0-9_-]{20,}@", "-" + "A" * 43 + "@", real),
    "one_character_off": lambda label, real: real[:-20] + ("B" if real[-20] != "B" else "C") + real[-19:],
    "old_style_guessable_id": lambda label, real: f"<qopi-case-{'0' * 20}@qopi-bot.test>",
    "practice_message_id": lambda label, real: SUBSET_ID,
}


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_staff_mail_never_reaches_the_practice(tmp_path: Path, smtp_sink: SmtpSink, logs: io.StringIO,
                                                            forgery: str) -> None:
    db = tmp_path / "db.sqlite3"
    async with running_worker(settings_for(db, smtp_sink)) as worker:
        label, real_id = await _open_case(worker, smtp_sink)
        assert re.fullmatch(r"<qopi-case-1-[A-Za-z0-9_-]{43}@qopi-bot\.test>", real_id)
        await send(worker, staff_reply(FORGERIES[forgery](label, real_id), label), STAFF)
        await settle(worker.store)
        assert smtp_sink.messages == []  # nothing to the practice, nothing to the "staff" sender either
        case = await worker.store.get_case(parse_case_label(label))
        assert [e.kind for e in case.events if e.kind.startswith("staff_reply")] == ["staff_reply_refused"]
        assert [i.kind for i in await worker.store.outbox_list(channel="email")] == ["staff_case", "reply"]

        # The genuine reply (In-Reply-To the case mail) still goes through.
        genuine = staff_reply(real_id, label).replace(b"Message-ID: <PH0", b"Message-ID: <PH1")  # a new mail
        await send(worker, genuine, STAFF)
        await settle(worker.store)
        [relay] = smtp_sink.messages
        assert relay.rcpt_tos == (DANA,) and "list of oncologists" in reply_text(relay)

    # The refusal is logged, without the body.
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    refused = [r for r in lines if r.get("event") == "email.staff_reply_refused"]
    assert len(refused) == 1 and refused[0]["case"] == label and refused[0]["reason"] in ("no_token", "wrong_token")
    assert SECRET_LINE.decode() not in logs.getvalue() and "Jordan" not in logs.getvalue()

    # Staff see the refused attempt.
    shown = Cli(f"sqlite+aiosqlite:///{db}").run("cases", "show", label)
    assert shown.returncode == 0, shown.stderr
    assert "Refused staff replies (1)" in shown.stdout and STAFF in shown.stdout and "not relayed" in shown.stdout


async def test_guessed_case_number_that_does_not_exist_is_refused(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        label, real_id = await _open_case(worker, smtp_sink)
        await send(worker, staff_reply(real_id.replace("qopi-case-1-", "qopi-case-2-"), "QCP-0002"), STAFF)
        await settle(worker.store)
        assert smtp_sink.messages == []
        assert (await worker.store.inbox_counts()).get("ignored") == 1
        assert await worker.store.get_case(2) is None


DMARC_PASS = b"Authentication-Results: mx.qopi-bot.test; spf=pass smtp.mailfrom=qopi-bot.test;\r\n" \
             b" dkim=pass header.d=qopi-bot.test; dmarc=pass (p=reject) header.from=qopi-bot.test\r\n"
DMARC_FAIL = b"Authentication-Results: mx.qopi-bot.test; dkim=none; dmarc=fail header.from=qopi-bot.test\r\n"
DKIM_OTHER_DOMAIN = b"Authentication-Results: mx.qopi-bot.test; dkim=pass header.d=evil.example; dmarc=none\r\n"


@pytest.mark.parametrize(("headers", "relayed"), [
    (b"", False),                                   # no verdict from our server at all
    (DMARC_FAIL, False),
    (DKIM_OTHER_DOMAIN, False),                     # signed, but by someone else's domain
    (DMARC_FAIL + DMARC_PASS, False),               # a "pass" the sender added below ours counts for nothing
    (DMARC_PASS, True),
    (DMARC_PASS + DMARC_FAIL, True),
])
async def test_require_dmarc_is_a_second_lock(tmp_path: Path, smtp_sink: SmtpSink, headers: bytes, relayed: bool) -> None:
    settings = settings_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_STAFF_REQUIRE_DMARC="true")
    async with running_worker(settings) as worker:
        label, real_id = await _open_case(worker, smtp_sink)
        await send(worker, staff_reply(real_id, label, headers), STAFF)
        await settle(worker.store)
        assert [m.rcpt_tos for m in smtp_sink.messages] == ([(DANA,)] if relayed else [])
        case = await worker.store.get_case(parse_case_label(label))
        kinds = [e.kind for e in case.events if e.kind.startswith("staff_reply")]
        assert kinds == (["staff_reply"] if relayed else ["staff_reply_refused"])


async def test_authserv_id_names_our_server(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """With QOPI_AUTHSERV_ID set, only that server's verdict counts, wherever it sits."""
    settings = settings_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_STAFF_REQUIRE_DMARC="true",
                            QOPI_AUTHSERV_ID="mx.qopi-bot.test")
    forged = DMARC_PASS.replace(b"mx.qopi-bot.test", b"mx.evil.example")
    async with running_worker(settings) as worker:
        label, real_id = await _open_case(worker, smtp_sink)
        await send(worker, staff_reply(real_id, label, forged), STAFF)
        await settle(worker.store)
        assert smtp_sink.messages == []
        await send(worker, staff_reply(real_id, label, forged + DMARC_PASS).replace(b"Message-ID: <PH0", b"Message-ID: <PH1"),
                   STAFF)
        await settle(worker.store)
        assert [m.rcpt_tos for m in smtp_sink.messages] == [(DANA,)]
